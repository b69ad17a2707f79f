"""The house's rules, read from the source: master/ and router/ never import
each other, the router never imports Buildbot, and what both sides share
(wire, util) imports neither side."""

import ast
import os

from twisted.trial import unittest

import buildbot_mq_ordered

PACKAGE = os.path.dirname(os.path.abspath(buildbot_mq_ordered.__file__))
P = 'buildbot_mq_ordered'

# where a module lives -> the imports it may not have (prefixes)
RULES = {
    'master': (f'{P}.router', f'{P}.cli', f'{P}.load'),
    'router': (f'{P}.master', f'{P}.cli', f'{P}.load', 'buildbot'),
    'wire': (f'{P}.master', f'{P}.router', f'{P}.cli', f'{P}.load', 'buildbot'),
    'util': (f'{P}.master', f'{P}.router', f'{P}.cli', f'{P}.load', 'buildbot'),
}


def imported(source):
    """Every module a source imports, at any depth (function-level included);
    ``from P import x`` counts as ``P.x`` (x may be a module)."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [node.module] + [f'{node.module}.{a.name}' for a in node.names]
    return names


def side(relpath):
    """'master', 'router', 'wire', 'util' or None for a path inside the package."""
    first = relpath.split(os.sep)[0]
    if first == 'wire.py':
        return 'wire'
    return first if first in RULES else None


def violations(relpath, source):
    rules = RULES.get(side(relpath), ())
    return sorted({f"{relpath} imports {name}" for name in imported(source)
                   for banned in rules if name == banned or name.startswith(banned + '.')})


def package_sources():
    for root, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith('.py'):
                path = os.path.join(root, f)
                with open(path) as fh:
                    yield os.path.relpath(path, PACKAGE), fh.read()


class Layout(unittest.TestCase):

    def test_no_side_imports_the_other_and_the_router_no_buildbot(self):
        found = [v for rel, src in package_sources() for v in violations(rel, src)]
        self.assertEqual(found, [])

    def test_every_rule_is_checked_where_it_applies(self):
        seen = {side(rel) for rel, _ in package_sources()}
        self.assertEqual(seen - {None}, set(RULES))

    def test_a_crossing_is_found_at_any_depth(self):
        # the checker itself: each kind of crossing is reported
        src = ("import os\n"
               "def f():\n"
               "    from buildbot_mq_ordered.router import sequencer\n")
        self.assertEqual(violations(os.path.join('master', 'mq.py'), src),
                         ["master/mq.py imports buildbot_mq_ordered.router",
                          "master/mq.py imports buildbot_mq_ordered.router.sequencer"])
        self.assertEqual(violations(os.path.join('router', 'x.py'),
                                    "from buildbot.util import tuplematch\n"),
                         ["router/x.py imports buildbot.util",
                          "router/x.py imports buildbot.util.tuplematch"])
        self.assertEqual(violations('wire.py', "from buildbot_mq_ordered import master\n"),
                         ["wire.py imports buildbot_mq_ordered.master"])
        self.assertEqual(violations(os.path.join('cli', 'x.py'),
                                    "from buildbot_mq_ordered import master\n"), [])
