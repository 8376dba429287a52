"""Pure decisions: no boto3, no os.environ, no clock. Inputs are observed state and config; outputs are plans."""
