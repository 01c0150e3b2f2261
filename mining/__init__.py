"""Mining jobs: features as of a date, churn, lifetime value, the pyramid and relationship stages."""
