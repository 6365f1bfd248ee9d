"""Other ways of doing what the product does, kept to be measured against it by the
benchmarks beside this folder (not run by ``make bench`` on their own)."""
