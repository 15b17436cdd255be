"""Facts every part shares: wire schemas, topics, settings, errors, regions, units, credit codes."""
