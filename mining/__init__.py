"""Mining jobs: features as of a date, churn, lifetime value, the pyramid and relationship stages."""

import os

# scikit-learn's OpenMP threads (boosting, k-means) sleep while they wait instead of spinning,
# so that two of them give way to other work on the cores. OpenMP reads this once, when
# scikit-learn first loads it, hence here, before any mining module imports scikit-learn. At L,
# fitting the churn model on two threads took 14.7 s against 21.0 s on one, and beside a
# two-thread DuckDB query 24.2 s against 27.5 s; spinning, 12.7 s idle but 37.1 s beside it.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
