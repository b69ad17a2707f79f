"""What a router's log (``<cbdir>/router.log``) says of a fault run: the
terms it led and left and where each began, positions it numbered twice,
tracebacks. With ``$BMO_CHAOS_LOGS`` set, the logs are kept there."""

import os
import re
import shutil

LEADS = re.compile(r'sequencer leads realm \S+ with term (\d+): .*next position (\d+)')
LEFT = re.compile(r'sequencer: no longer leads realm \S+ \(term (\d+)\): (.*?); a candidate')
# a commit refused by the journal's primary key: a position numbered twice
NUMBERED_TWICE = 'entries_pkey'
TRACEBACKS = ('Traceback', 'AttributeError')


def text(router):
    try:
        with open(router.log_path, errors='replace') as f:
            return f.read()
    except OSError:
        return ''


def terms(router):
    """Its moves in order: '+N' it led term N, '-N: why' it left it."""
    moves = []
    for line in text(router).splitlines():
        led = LEADS.search(line)
        left = LEFT.search(line)
        if led:
            moves.append(f'+{led.group(1)}')
        elif left:
            moves.append(f'-{left.group(1)}: {left.group(2)[:80]}')
    return moves


def first_positions(router):
    """[(term, its first position)] of each term it led."""
    return [(int(m.group(1)), int(m.group(2))) for m in LEADS.finditer(text(router))]


def keep(router, name):
    """A copy of its log in ``$BMO_CHAOS_LOGS`` (if set) as name.log."""
    where = os.environ.get('BMO_CHAOS_LOGS')
    if where:
        os.makedirs(where, exist_ok=True)
        shutil.copy(router.log_path, os.path.join(where, f'{name}.log'))


def numbered_twice(routers):
    """Lines where a commit met a position already in the journal."""
    return sum(text(r).count(NUMBERED_TWICE) for r in routers)


def tracebacks(router):
    """Lines of a traceback or an AttributeError, at most 10."""
    return [line for line in text(router).splitlines()
            if any(t in line for t in TRACEBACKS)][:10]
