"""`make bench`: Rapport's own measurements at a million contacts, beside their baselines."""
