"""The processing path without Kafka: the detect and correlate stages, the wire
conversions and the in-process ``Pipeline``."""
