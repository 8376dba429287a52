"""The model layer: plain frozen data every other layer shares (observed state, targets, findings,
actions and plans). It imports nothing from the rest of the package but itself and ``errors``."""
