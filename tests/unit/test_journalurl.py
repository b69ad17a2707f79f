"""What ``--journal`` accepts and how it is shown (router/journalurl.py):
libpq's multi-host URLs and parameters (issue 22: libpq's own way to
follow a failover), errors naming the bad part, and the password never
shown, in any URL."""

from argparse import Namespace

import psycopg
from twisted.trial import unittest

from buildbot_mq_ordered.router import journalurl
from buildbot_mq_ordered.router import preflight
from buildbot_mq_ordered.router.journal import pglink

FAILOVER = ('postgresql://bmo:hush@h1:5432,h2:5433/journal'
            '?target_session_attrs=read-write&connect_timeout=3')


class Parsing(unittest.TestCase):

    def test_a_host_list_with_parameters_is_accepted(self):
        self.assertIsNone(journalurl.check_postgresql(FAILOVER))
        self.assertEqual(journalurl.hosts(FAILOVER), [('h1', '5432'), ('h2', '5433')])
        self.assertEqual(journalurl.host_port(FAILOVER), 'h1:5432,h2:5433')
        url = 'postgresql://bmo@[::1]:6000,db.example,[fe80::1]/j'
        self.assertIsNone(journalurl.check_postgresql(url))
        self.assertEqual(journalurl.hosts(url),
                         [('[::1]', '6000'), ('db.example', '5432'), ('[fe80::1]', '5432')])

    def test_one_host_as_before(self):
        for url, where in [('postgresql://bmo@db:5433/j', 'db:5433'),
                           ('postgres://db/j', 'db:5432'),
                           ('postgresql://u:p%40ss@127.0.0.1/j?sslmode=disable',
                            '127.0.0.1:5432')]:
            self.assertIsNone(journalurl.check_postgresql(url), url)
            self.assertEqual(journalurl.host_port(url), where)

    def test_errors_name_the_bad_part(self):
        for url, says in [
                ('postgresql://u@h1:5432,h2:99999/j',
                 "host 2 of 2 (h2) has port '99999': a port is a number from 1 to 65535"),
                ('postgresql://u@h1:x/j', "the host (h1) has port 'x'"),
                ('postgresql://u@h1,,h2/j', "host 2 of 3 is empty"),
                ('postgresql://u@h1,/j', "host 2 of 2 is empty"),
                ('postgresql://u@h1,:5433/j', "host 2 of 2 (':5433') has no name before its port"),
                ('postgresql://u@[::1/j', "the host ('[::1'): an IPv6 address needs [ADDRESS]"),
                ('postgresql://u@[::1]5432/j', "only :PORT may follow [ADDRESS]"),
                ('postgresql://u@h1,h2', "it needs a host and a database"),
                ('postgresql://u@/j', "it needs a host and a database"),
                ('postgresql://u@h1/?connect_timeout=3', "it needs a host and a database")]:
            self.assertIn(says, journalurl.check_postgresql(url) or 'accepted', url)

    def test_libpq_reads_the_url_as_we_do(self):
        # the hosts and ports we name in messages are the ones libpq tries
        info = psycopg.conninfo.conninfo_to_dict(FAILOVER)
        self.assertEqual(list(zip(info['host'].split(','), info['port'].split(','))),
                         journalurl.hosts(FAILOVER))
        self.assertEqual((info['target_session_attrs'], info['connect_timeout']),
                         ('read-write', '3'))


class Password(unittest.TestCase):

    def test_masked_in_every_shape_of_url(self):
        for url, shown in [
                (FAILOVER, FAILOVER.replace(':hush@', ':***@')),
                ('postgresql://bmo:hush@db:5432/j', 'postgresql://bmo:***@db:5432/j'),
                ('postgresql://bmo@h1,h2/j?sslmode=disable&password=hush',
                 'postgresql://bmo@h1,h2/j?sslmode=disable&password=***'),
                ('postgresql://bmo:a@b@h1,h2/j', 'postgresql://bmo:***@h1,h2/j'),
                ('postgresql://bmo@db/j', 'postgresql://bmo@db/j'),
                # malformed: refused, and the refusal shows no password either
                ('postgresql://bmo:hush@h1:99999,,h2', 'postgresql://bmo:***@h1:99999,,h2'),
                ('postgresql://bmo:hush@h1:x/j?password=hush2',
                 'postgresql://bmo:***@h1:x/j?password=***')]:
            self.assertEqual(journalurl.masked(url), shown)
            self.assertNotIn('hush', journalurl.masked(url))

    def test_taken_out_of_the_url_for_the_environment(self):
        self.assertEqual(journalurl.without_password(FAILOVER),
                         (FAILOVER.replace(':hush@', '@'), 'hush'))
        self.assertEqual(
            journalurl.without_password('postgresql://bmo@h1,h2/j?password=s%40c&sslmode=require'),
            ('postgresql://bmo@h1,h2/j?sslmode=require', 's@c'))
        self.assertEqual(journalurl.without_password('postgresql://bmo@h1/j?password=x'),
                         ('postgresql://bmo@h1/j', 'x'))
        self.assertEqual(journalurl.without_password('postgresql://bmo@h1/j'),
                         ('postgresql://bmo@h1/j', None))

    def test_the_router_command_takes_a_failover_url_and_refuses_a_bad_one_masked(self):
        self.assertEqual(preflight.journal_path(Namespace(journal=FAILOVER, cbdir='cb')),
                         FAILOVER)
        bad = FAILOVER.replace('h2:5433', 'h2:543x')
        with self.assertRaises(SystemExit) as cm:
            preflight.journal_path(Namespace(journal=bad, cbdir='cb'))
        said = str(cm.exception)
        self.assertIn("host 2 of 2 (h2) has port '543x'", said)
        self.assertIn('bmo:***@h1:5432,h2:543x', said)
        self.assertNotIn('hush', said)


class Connecting(unittest.TestCase):
    """What pglink hands psycopg (which hands libpq): the URL whole."""

    def connected(self, url, limits=pglink.LOOKUPS):
        made = []
        self.patch(pglink.psycopg, 'connect', lambda *a, **kw: made.append((a, kw)))
        pglink.connect(url, limits)
        [(args, kw)] = made
        return args, kw

    def test_the_url_goes_through_whole_and_its_connect_timeout_wins(self):
        args, kw = self.connected(FAILOVER)
        self.assertEqual(args, (FAILOVER,))
        self.assertEqual(kw['connect_timeout'], '3')
        args, kw = self.connected('postgresql://bmo@h1,h2/j?target_session_attrs=read-write')
        self.assertEqual(kw['connect_timeout'], pglink.LOOKUPS.connect)

    def test_options_in_the_url_come_after_ours(self):
        _, kw = self.connected('postgresql://bmo@h1,h2/j?options=-c%20work_mem%3D8MB')
        self.assertTrue(kw['options'].startswith(pglink.LOOKUPS.options()))
        self.assertTrue(kw['options'].endswith(' -c work_mem=8MB'))
