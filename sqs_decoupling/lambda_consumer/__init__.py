"""The Lambda consumer: LambdaQueueConsumer (an SQS event source with partial batch responses) and runtime/ (the
Powertools handler it deploys)."""
