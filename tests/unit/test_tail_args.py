"""The tail command's options, filter, start and lines (no router)."""

import json

from twisted.trial import unittest

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.cli import tail


class Arguments(unittest.TestCase):

    def parse(self, *argv):
        import argparse
        parser = argparse.ArgumentParser()
        tail.add_parser(parser.add_subparsers())
        return parser.parse_args(['tail', *argv])

    def test_bad_values_name_the_option(self):
        args = self.parse('--router', 'http://h/ws', '--from', '0', '--authid', 'm1')
        self.assertCountEqual(tail.check_args(args), [
            "--router must be a ws:// or wss:// URL, not 'http://h/ws'",
            "--from must be a position (1 or more), not 0",
            "--authid and --secret-file go together"])

    def test_filter_is_buildbots_matching(self):
        self.assertEqual(tail.parse_filter('builds.*.new'), ('builds', None, 'new'))
        self.assertIsNone(tail.parse_filter(None))

    def test_start(self):
        def start(*options):
            return tail.start_at(self.parse('--router', 'ws://h/ws', *options))
        self.assertEqual(start()(1, 10), 11)
        self.assertEqual(start('--last', '3')(1, 10), 8)
        self.assertEqual(start('--last', '30')(4, 10), 4)
        self.assertEqual(start('--from', '2')(5, 10), 5)

    def test_a_line_abbreviates_data(self):
        text = tail.line([7, 3, ['a', 'b'], wire.encode_data({'x': 'y' * 256}), 5], False)
        self.assertTrue(text.startswith('       7      3  a.b  {"x": "yyy'), text)
        self.assertTrue(text.endswith('...'))
        self.assertEqual(len(text.split('a.b  ', 1)[1]), tail.ABBREVIATE)

    def test_a_json_line_tells_the_term(self):
        text = tail.line([7, 3, ['a'], wire.encode_data(1), 5], True)
        self.assertEqual(json.loads(text), {'pos': 7, 'seq': 3, 'key': ['a'], 'data': 1,
                                            'term': 5})
