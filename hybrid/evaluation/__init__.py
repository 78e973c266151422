"""How good are the labels: metrics, the baselines, cross-validation, label quality, reports."""
