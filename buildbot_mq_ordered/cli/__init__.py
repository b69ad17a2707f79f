"""``buildbot-mq-ordered``: the command line (router, demo, bench, node)."""

import argparse
import sys


def main(argv=None):
    from buildbot_mq_ordered.cli import router
    parser = argparse.ArgumentParser(
        prog='buildbot-mq-ordered',
        description="Totally ordered Buildbot MQ over a Crossbar router.")
    sub = parser.add_subparsers(dest='command', required=True)
    for module in _commands():
        module.add_parser(sub)
    args = parser.parse_args(argv)
    return args.run(args)


def _commands():
    from buildbot_mq_ordered.cli import router
    mods = [router]
    return mods


if __name__ == '__main__':
    sys.exit(main())
