"""Local services for development and tests: Kafka (KRaft) from Maven Central jars and
PostgreSQL from the Debian binaries, run as plain processes under a git-ignored folder."""
