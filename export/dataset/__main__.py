"""`python -m export.dataset --out <dir> [--seed N --train N --val N --calib N]`: write the synthetic splits."""
from export.dataset.synthetic import main

main()
