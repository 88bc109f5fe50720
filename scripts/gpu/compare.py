#!/usr/bin/env python3
"""Pass conditions of scripts/gpu/check.sh that compare two runs' metrics.

  compare.py losses A/train.csv B/train.csv TOL MIN_STEPS
      every loss column (loss, loss/*) of every step agrees within TOL
      relative, over at least MIN_STEPS steps present in both;
  compare.py val A/val.csv B/val.csv TOL
      the last epoch's validation losses (val_loss, val_loss/* and the
      per-task loss columns) agree within TOL relative, and both runs
      reached the same epoch.

Prints the worst difference and one verdict line (PASS or FAIL ...);
exits 0 on PASS, 1 on FAIL, 2 on unreadable input.
"""
import csv
import sys


def rows(path):
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError as e:
        print(f"FAIL: cannot read {path}: {e.strerror}")
        sys.exit(2)


def rel(x, y):
    return abs(x - y) / max(abs(x), abs(y), 1e-30)


def number(path, row, col):
    try:
        return float(row[col])
    except (TypeError, ValueError):
        print(f"FAIL: {path}: column {col} holds {row[col]!r}, not a number")
        sys.exit(2)


def losses(a, b, tol, min_steps):
    ra, rb = rows(a), rows(b)
    cols = [k for k in (ra[0] if ra else {}) if k == "loss" or k.startswith("loss/")]
    steps = min(len(ra), len(rb))
    worst, where = 0.0, ""
    for i in range(steps):
        for k in cols:
            d = rel(number(a, ra[i], k), number(b, rb[i], k))
            if d > worst:
                worst, where = d, f"step {i + 1} {k}"
    ok = steps >= min_steps and bool(cols) and worst <= tol
    print(f"{'PASS' if ok else 'FAIL'}: per-step losses within {worst:.2e} relative"
          f" (worst at {where or '-'}) over {steps} steps and {len(cols)} loss columns;"
          f" limit {tol:g}, at least {min_steps} steps")
    return ok


def val(a, b, tol):
    ra, rb = rows(a), rows(b)
    if not ra or not rb:
        print(f"FAIL: {a if not ra else b} has no validation row")
        return False
    la, lb = ra[-1], rb[-1]
    if la.get("epoch") != lb.get("epoch"):
        print(f"FAIL: the runs end at epochs {la.get('epoch')} and {lb.get('epoch')}")
        return False
    cols = [k for k in la if "loss" in k]
    worst, where = 0.0, ""
    for k in cols:
        if k not in lb:
            print(f"FAIL: {b} has no column {k}")
            return False
        d = rel(number(a, la, k), number(b, lb, k))
        if d > worst:
            worst, where = d, k
    ok = bool(cols) and worst <= tol
    print(f"{'PASS' if ok else 'FAIL'}: epoch {la.get('epoch')} validation losses within {worst:.2e}"
          f" relative (worst {where or '-'}) over {len(cols)} columns; limit {tol:g}")
    return ok


def main(argv):
    if len(argv) == 6 and argv[1] == "losses":
        return losses(argv[2], argv[3], float(argv[4]), int(argv[5]))
    if len(argv) == 5 and argv[1] == "val":
        return val(argv[2], argv[3], float(argv[4]))
    print(__doc__, file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    sys.exit(0 if main(sys.argv) else 1)
