"""Figures a chaos or load test prints (and appends to $BMO_CHAOS_REPORT)."""

import json
import os


def report(name, **figures):
    line = json.dumps({'chaos': name, **figures})
    print(line)
    path = os.environ.get('BMO_CHAOS_REPORT')
    if path:
        with open(path, 'a') as f:
            f.write(line + '\n')
