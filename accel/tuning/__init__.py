"""Tuning records: MetaSchedule databases under tuning_logs/, and the tuner that writes them."""
