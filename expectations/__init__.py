"""Great Expectations suites: the data-quality gates between raw, marts, scores and publish."""
