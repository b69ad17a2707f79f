"""``buildbot-mq-ordered``: the command line (router, status, tail, demo, bench, node)."""

import argparse
import importlib
import sys

COMMANDS = ('router', 'status', 'tail', 'node', 'demo', 'bench')


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='buildbot-mq-ordered',
        description="Totally ordered Buildbot MQ over a Crossbar router.")
    sub = parser.add_subparsers(dest='command', required=True)
    for name in COMMANDS:
        importlib.import_module(f'buildbot_mq_ordered.cli.{name}').add_parser(sub)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == '__main__':
    sys.exit(main())
