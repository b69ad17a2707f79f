"""Plain-text tables and figures as the demo and the bench print them."""


def aligned(head, rows, left=1):
    """Lines of a table: columns padded to their widest cell, the first
    ``left`` columns flush left and the rest flush right, a rule under the
    head."""
    rows = [tuple(head)] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    for k, r in enumerate(rows):
        lines.append('  '.join(c.ljust(w) if i < left else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths))))
        if k == 0:
            lines.append('  '.join('-' * w for w in widths))
    return lines


def ms(seconds):
    """Seconds as milliseconds: one decimal below 100 ms; '-' for None."""
    if seconds is None:
        return '-'
    v = seconds * 1000
    return f"{v:.1f}" if v < 100 else f"{v:.0f}"
