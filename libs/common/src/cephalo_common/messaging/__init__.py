"""Events and commands on NATS JetStream: envelope, subjects, streams, brokers."""
