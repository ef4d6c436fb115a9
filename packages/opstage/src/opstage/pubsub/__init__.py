"""Topic-bus engines that live outside the database (NATS), and what engines share."""
