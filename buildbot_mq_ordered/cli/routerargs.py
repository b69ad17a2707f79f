"""The options of a command that joins the router as a master does
(``tail``, ``status``): where, which realm, which credentials."""


def add_router_args(p):
    p.add_argument('--router', metavar='URL', required=True, action='append',
                   help="ws:// or wss:// URL of the router (again for a standby router)")
    p.add_argument('--realm', default='buildbot', help="WAMP realm (default: buildbot)")
    p.add_argument('--authid', help="join as this master (the router's --secret-file)")
    p.add_argument('--secret-file', help="file holding --authid's secret")
    p.add_argument('--ca-file', help="PEM file of the CA of the router's certificate (wss://)")


def check_router_args(args):
    """What is wrong with those options (a list of lines)."""
    from buildbot_mq_ordered.master import config
    errors = [f"--router must be a ws:// or wss:// URL, not {url!r}"
              for url in args.router if config.CHECKS['router_url'](url)]
    if (args.authid is None) != (args.secret_file is None):
        errors.append("--authid and --secret-file go together")
    return errors
