"""Local tooling: the embedded moto server, the stack deployed into it, and the pipeline that feeds
the real handlers the way Lambda's SQS event source would. Used by `make demo`, tests, chaos and bench."""
