"""wire: message encoding and checks; routerconfig: roles."""

import datetime
import json

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import msgpack
from twisted.trial import unittest

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.router import nodeconfig as routerconfig
from buildbot_mq_ordered.wire import MessageRejected
from buildbot_mq_ordered.wire import encode_message
from tests.support.util import ODD_DATA
from tests.support.util import ODD_KEYS

BIG = 10 ** 7

# what Buildbot's data API puts into messages (buildbot.data.types): JSON's
# values plus bytes (types.Binary), datetimes (types.DateTime), tuples
# (sourced properties) and integer dict keys
utc = datetime.timezone.utc
datetimes = (st.datetimes(timezones=st.just(utc)) |
             st.datetimes(timezones=st.just(datetime.timezone(datetime.timedelta(hours=2))))
             | st.datetimes())
buildbot_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) |
    st.floats(allow_nan=False) | st.text() | st.binary() | datetimes,
    lambda children: st.lists(children, max_size=4) |
    st.tuples(children, children) |
    st.dictionaries(st.text(max_size=8) | st.integers(-2**63, 2**64 - 1), children,
                    max_size=4),
    max_leaves=20)

# text that UTF-8 can encode (no lone surrogates)
utf8_text = st.text(alphabet=st.characters(blacklist_categories=('Cs',)))


def as_delivered(value):
    """What a consumer receives for a produced value: the same, but tuples
    inside it are lists (msgpack has one array type; documented)."""
    if isinstance(value, (list, tuple)):
        return [as_delivered(v) for v in value]
    if isinstance(value, dict):
        return {k: as_delivered(v) for k, v in value.items()}
    return value


def through_transport(obj):
    """What autobahn's msgpack serializer on both ends makes of obj."""
    return msgpack.unpackb(msgpack.packb(obj, use_bin_type=True), raw=False)


class Encode(unittest.TestCase):

    def test_odd_keys_and_data_round_trip(self):
        for key in ODD_KEYS:
            for data in ODD_DATA:
                k, raw, _ = encode_message(key, data, BIG)
                self.assertIsInstance(raw, bytes)
                self.assertEqual(k, list(key))
                self.assertEqual(wire.decode_data(raw), data)
                # and through the serializer a WAMP transport uses
                k2, data2 = through_transport([k, raw])
                self.assertEqual(tuple(k2), key)
                self.assertEqual(wire.decode_data(data2), data)

    def test_bytes_arrive_as_bytes(self):
        # a patch body in a buildset's sourcestamp (issue 9): JSON refused it,
        # so every try job's buildset messages were dropped
        patch = {'patchid': 1, 'body': b'--- a\n+++ b\n\xff\x00', 'level': 1,
                 'subdir': '.', 'author': None, 'comment': None}
        msg = {'bsid': 1, 'sourcestamps': [{'ssid': 1, 'patch': patch}]}
        _, raw, _ = encode_message(('buildsets', '1', 'new'), msg, BIG)
        got = wire.decode_data(through_transport(raw))
        self.assertEqual(got, msg)
        self.assertIsInstance(got['sourcestamps'][0]['patch']['body'], bytes)

    def test_datetimes_arrive_as_datetimes(self):
        aware = datetime.datetime(2026, 11, 27, 9, 21, 33, 123456, tzinfo=utc)
        naive = datetime.datetime(2026, 11, 27, 9, 21, 33, 123456)
        other = aware.astimezone(datetime.timezone(datetime.timedelta(hours=-5)))
        for value in (aware, naive, other):
            got = wire.decode_data(encode_message(('k',), {'at': value}, BIG)[1])['at']
            self.assertEqual(got, value)
            self.assertEqual(got.tzinfo is None, value.tzinfo is None)
        # Buildbot's own UTC (buildbot.util.UTC) arrives as the same instant, in UTC
        from buildbot.util import epoch2datetime
        when = epoch2datetime(1700000000)
        got = wire.decode_data(encode_message(('k',), when, BIG)[1])
        self.assertEqual(got, when)
        self.assertEqual(got.utcoffset(), datetime.timedelta(0))

    def test_dict_keys_keep_their_type(self):
        data = {1: 'one', 'x': {2: [3]}, None: 0, (1, 'a'): 'tuple key'}
        self.assertEqual(wire.decode_data(encode_message(('k',), data, BIG)[1]), data)

    def test_tuples_become_lists(self):
        props = {'branch': ('main', 'Build'), 'n': (1, 'Scheduler')}
        self.assertEqual(wire.decode_data(encode_message(('k',), props, BIG)[1]),
                         {'branch': ['main', 'Build'], 'n': [1, 'Scheduler']})

    def test_key_list_accepted(self):
        # size: the key's bytes (a, b) and the data's (one byte for 1)
        self.assertEqual(encode_message(['a', 'b'], 1, BIG), (['a', 'b'], b'\x01', 3))

    def test_key_is_copied(self):
        key = ['a']
        k, _, _ = encode_message(key, 1, BIG)
        k.append('b')
        self.assertEqual(key, ['a'])

    def test_rejects_what_cannot_travel(self):
        for data, why in [({'x': object()}, 'object'), ({1, 2}, 'set'),
                          (2 ** 64, 'out of range'), (-2 ** 63 - 1, 'out of range'),
                          (1 + 2j, 'complex')]:
            with self.assertRaises(MessageRejected, msg=repr(data)) as cm:
                encode_message(('k',), data, BIG)
            self.assertIn('cannot be sent', str(cm.exception))
            self.assertIn(why, str(cm.exception))

    def test_rejects_circular(self):
        d = {}
        d['self'] = d
        with self.assertRaises(MessageRejected):
            encode_message(('k',), d, BIG)

    def test_rejects_oversize(self):
        # 'x' * 97: 2 bytes of header + 97; key 'k': 1 byte
        _, raw, size = encode_message(('k',), 'x' * 97, 100)
        self.assertEqual((len(raw), size), (99, 100))
        with self.assertRaises(MessageRejected) as cm:
            encode_message(('k',), 'x' * 98, 100)
        self.assertIn('101', str(cm.exception))
        self.assertIn('100', str(cm.exception))

    def test_size_counts_the_key(self):
        # issue 10: a huge key with tiny data was accepted, then wedged the
        # submit frame
        with self.assertRaises(MessageRejected) as cm:
            encode_message(('k' * 200,), None, 200)
        self.assertIn('201 bytes', str(cm.exception))
        self.assertEqual(encode_message(('€' * 10, 'ab'), None, 33)[2], 33)

    def test_key_over_the_sequencers_limit_is_rejected(self):
        # issue 10: a 17 MiB key made a frame the router refused, resent forever
        encode_message(('k' * wire.MAX_KEY_BYTES,), 1, BIG)
        with self.assertRaises(MessageRejected) as cm:
            encode_message(('k' * wire.MAX_KEY_BYTES, 'x'), 1, BIG)
        self.assertIn(f'routing key of {wire.MAX_KEY_BYTES + 1} bytes', str(cm.exception))

    @given(st.lists(utf8_text, max_size=3), utf8_text | st.binary(), st.integers(1, 300))
    @settings(max_examples=200, deadline=None)
    def test_size_limit_is_exact_in_bytes(self, key, data, max_size):
        size = (sum(len(k.encode('utf-8')) for k in key) +
                len(msgpack.packb(data, use_bin_type=True)))
        if size <= max_size:
            k, raw, got = encode_message(key, data, max_size)
            self.assertEqual(got, size)
            self.assertEqual(wire.decode_data(raw), data)
        else:
            with self.assertRaises(MessageRejected):
                encode_message(key, data, max_size)

    def test_rejects_non_string_key_elements(self):
        for key in [('a', 1), (None,), ('a', None), (b'a',), (('a',),), [1.5],
                    'a.b', None, 42, {'a': 1}]:
            with self.assertRaises(MessageRejected, msg=repr(key)):
                encode_message(key, 1, BIG)

    def test_rejects_what_utf8_cannot_carry(self):
        # a lone surrogate cannot be sent over WAMP (its serializers encode
        # UTF-8): it must be rejected here, whatever the size limit
        for max_size in (10, BIG):
            with self.assertRaises(MessageRejected, msg=f"data, max_size={max_size}"):
                encode_message(('k',), '\ud800', max_size)
            with self.assertRaises(MessageRejected, msg=f"key, max_size={max_size}"):
                encode_message(('k\udfff',), 1, max_size)

    def test_undecodable_data_raises_value_error(self):
        # what a rogue publisher could put on the stream: mq.py logs and skips
        for raw in (b'', b'\xc1', b'\x92\x01', b'\x01\x02', b'\xd4\x01\xff'):
            with self.assertRaises((ValueError, TypeError), msg=repr(raw)):
                wire.decode_data(raw)

    @given(st.lists(utf8_text.filter(lambda t: len(t) < 200), max_size=5), buildbot_values)
    @settings(max_examples=300, deadline=None)
    def test_round_trip_property(self, key, data):
        k, raw, _ = encode_message(tuple(key), data, BIG)
        self.assertEqual(k, key)
        self.assertEqual(wire.decode_data(through_transport(raw)), as_delivered(data))
        entry = [1, 1, k, raw, 1]
        self.assertTrue(wire.is_entry(entry))
        self.assertTrue(wire.is_submission([1, k, raw]))


def data_api_sample(t, none=False):
    """A value of Buildbot data API type t (buildbot.data.types), as its
    resources put into messages; none=True: None wherever the type allows."""
    from buildbot.data import types
    from buildbot.util import epoch2datetime
    if isinstance(t, types.NoneOk):
        return None if none else data_api_sample(t.nestedType)
    if isinstance(t, types.List):
        return [data_api_sample(t.of, none), data_api_sample(t.of)]
    if isinstance(t, types.Entity):
        return {k: data_api_sample(v, none) for k, v in t.fields.items()}
    if isinstance(t, types.Identifier):
        return 'ident_1'[:t.len]
    samples = [
        (types.SourcedProperties, {'branch': ('"main"', 'Scheduler'), 'n': ('[1]', 'Build')}),
        (types.JsonObject, {'a': [1, None, 'ü'], 'b': {'c': 1.5}}),
        (types.DateTime, epoch2datetime(1700000000.25)),
        (types.Binary, b'--- a\n+++ b\n\x00\xff'),
        (types.Boolean, True),
        (types.Integer, 2 ** 40),
        (types.String, 'ünïcødé'),
    ]
    for cls, value in samples:
        if isinstance(t, cls):
            return value
    raise AssertionError(f"a data API type this test does not know: {t!r}")


class BuildbotDataTypes(unittest.TestCase):
    """Every type Buildbot's data API can put into a message arrives."""

    def resource_types(self):
        from buildbot.data.connector import DataConnector
        data = DataConnector()
        data._setup()
        return {name: rtype for name, rtype in sorted(vars(data.rtypes).items())
                if getattr(rtype, 'entityType', None) is not None}

    def test_every_resource_type_round_trips(self):
        rtypes = self.resource_types()
        # the resources whose events masters exchange are all here
        for name in ('build', 'buildset', 'buildrequest', 'step', 'log', 'change',
                     'worker', 'master', 'builder', 'scheduler', 'test_result_set'):
            self.assertIn(name, rtypes)
        for name, rtype in rtypes.items():
            for none in (False, True):
                msg = data_api_sample(rtype.entityType, none)
                # a message Buildbot's own validation accepts
                self.assertEqual(list(rtype.entityType.validate(name, msg)), [], name)
                _, raw, _ = encode_message((name + 's', '1', 'new'), msg, BIG)
                self.assertEqual(wire.decode_data(through_transport(raw)),
                                 as_delivered(msg), name)


GOOD_ENTRIES = [
    [1, 1, ['a'], b'1', 1],
    (5, 0, ('a', ''), b'\xc0', 2 ** 63 - 1),
    [10**12, 3, [], b'\x80', 12345],
    [1, -1, ['#', '*', 'a.b'], b'', 7],
]
BAD_ENTRIES = [
    None, 1, 'x', b'x', {}, [], [1, 1, ['a']],
    [1, 1, ['a'], b'1'],            # issue 22: every entry names its term
    [0, 1, ['a'], b'1', 1],         # positions start at 1
    [-1, 1, ['a'], b'1', 1],
    [True, 1, ['a'], b'1', 1],      # bool is not a position
    [1.0, 1, ['a'], b'1', 1],
    ['1', 1, ['a'], b'1', 1],
    [1, True, ['a'], b'1', 1],
    [1, 1.0, ['a'], b'1', 1],
    [1, None, ['a'], b'1', 1],
    [1, 1, 'a', b'1', 1],           # key must be a list
    [1, 1, None, b'1', 1],
    [1, 1, ['a', 1], b'1', 1],
    [1, 1, [None], b'1', 1],
    [1, 1, ['a'], '1', 1],          # data travels as msgpack bytes
    [1, 1, ['a'], None, 1],
    [1, 1, ['a'], {'x': 1}, 1],
    [1, 1, ['a'], b'1', 0],         # a term id is a positive 63-bit integer
    [1, 1, ['a'], b'1', -5],
    [1, 1, ['a'], b'1', 2 ** 63],
    [1, 1, ['a'], b'1', True],
    [1, 1, ['a'], b'1', 1.0],
    [1, 1, ['a'], b'1', None],
    {0: 1, 1: 1, 2: ['a'], 3: b'1', 4: 1},
]
GOOD_SUBMISSIONS = [
    [1, ['a'], b'1'],
    (99, ('a', ''), b'\xc0'),
    [1, [], b''],
]
BAD_SUBMISSIONS = [
    None, 1, 'abc', [], [1, ['a']], [1, ['a'], '1', 'x'],
    [0, ['a'], b'1'], [-3, ['a'], b'1'], [True, ['a'], b'1'], [1.0, ['a'], b'1'],
    ['1', ['a'], b'1'], [1, 'a', b'1'], [1, ['a', 2], b'1'], [1, ['a'], 2], [1, ['a'], '1'],
    [1, ['a'], None], [1, None, b'1'],
]

scalars = (st.none() | st.booleans() | st.integers(-3, 2**64) | st.floats() |
           st.text(max_size=4) | st.binary(max_size=4))
garbage = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) |
    st.tuples(children, children, children, children, children) |
    st.tuples(children, children, children, children) |
    st.tuples(children, children, children) |
    st.dictionaries(st.text(max_size=3) | st.integers(), children, max_size=3),
    max_leaves=10)
# an element of an entry: a scalar or a short list of scalars
element = scalars | st.lists(scalars, max_size=3) | st.tuples(st.text(max_size=2))


class Checks(unittest.TestCase):

    def test_good_entries(self):
        for e in GOOD_ENTRIES:
            self.assertTrue(wire.is_entry(e), e)

    def test_a_later_minor_may_append_to_an_entry(self):
        # docs/design.rst, "How the wire evolves": readers take the first five
        self.assertTrue(wire.is_entry([1, 1, ['a'], b'1', 1, 'extra']))

    def test_bad_entries(self):
        for e in BAD_ENTRIES:
            self.assertFalse(wire.is_entry(e), e)

    def test_good_submissions(self):
        for m in GOOD_SUBMISSIONS:
            self.assertTrue(wire.is_submission(m), m)

    def test_bad_submissions(self):
        for m in BAD_SUBMISSIONS:
            self.assertFalse(wire.is_submission(m), m)

    def test_entry_is_not_submission_and_back(self):
        for e in GOOD_ENTRIES:
            self.assertFalse(wire.is_submission(e))
        for m in GOOD_SUBMISSIONS:
            self.assertFalse(wire.is_entry(m))

    @given(garbage)
    @settings(max_examples=200, deadline=None)
    def test_garbage_never_raises(self, x):
        self.assertIsInstance(wire.is_entry(x), bool)
        self.assertIsInstance(wire.is_submission(x), bool)

    @given(st.tuples(element, element, element, element, element))
    @settings(max_examples=200, deadline=None)
    def test_garbage_entries_judged_consistently(self, t):
        e = list(t)
        expected = (type(e[0]) is int and e[0] > 0 and type(e[1]) is int and
                    isinstance(e[2], (list, tuple)) and
                    all(isinstance(k, str) for k in e[2]) and isinstance(e[3], bytes)
                    and type(e[4]) is int and 0 < e[4] < 2 ** 63)
        self.assertEqual(wire.is_entry(e), expected)
        self.assertEqual(wire.is_submission(e[1:4]),
                         type(e[1]) is int and e[1] > 0 and
                         isinstance(e[2], (list, tuple)) and
                         all(isinstance(k, str) for k in e[2]) and
                         isinstance(e[3], bytes))

    @given(garbage)
    @settings(max_examples=200, deadline=None)
    def test_garbage_survives_json_and_checks(self, x):
        # what the router actually hands over: JSON-decoded values
        try:
            decoded = json.loads(json.dumps(x))
        except (TypeError, ValueError):
            decoded = None
        self.assertIn(wire.is_entry(decoded), (True, False))
        self.assertIn(wire.is_submission(decoded), (True, False))

    def test_uris(self):
        for uri in (wire.SUBMIT, wire.REPLAY, wire.INFO, wire.STREAM):
            self.assertTrue(uri.startswith(wire.PREFIX))
        self.assertEqual(len({wire.SUBMIT, wire.REPLAY, wire.INFO, wire.STREAM}), 4)


class Roles(unittest.TestCase):

    def perms(self, open_realm=False):
        return {r['name']: r['permissions'] for r in routerconfig.roles(open_realm)}

    def allowed(self, permissions, uri, action):
        """What the router would decide: exact match first, then the
        longest prefix (Crossbar's matching order for static roles)."""
        exact = [p for p in permissions if p['match'] == 'exact' and p['uri'] == uri]
        if exact:
            return exact[0]['allow'][action]
        prefixes = sorted((p for p in permissions
                           if p['match'] == 'prefix' and uri.startswith(p['uri'])),
                          key=lambda p: len(p['uri']), reverse=True)
        return bool(prefixes) and prefixes[0]['allow'][action]

    def test_three_roles(self):
        self.assertEqual(set(self.perms()), {'master', 'sequencer', 'monitor'})
        self.assertEqual(set(self.perms(True)), {'master', 'sequencer', 'monitor'})

    def test_master_may_call_and_subscribe_only(self):
        master = self.perms()['master']
        self.assertTrue(self.allowed(master, wire.SUBMIT, 'call'))
        self.assertTrue(self.allowed(master, wire.REPLAY, 'call'))
        self.assertTrue(self.allowed(master, wire.INFO, 'call'))
        self.assertTrue(self.allowed(master, wire.STREAM, 'subscribe'))
        self.assertTrue(self.allowed(master, wire.STATUS, 'call'))
        self.assertTrue(self.allowed(master, wire.REPORT, 'publish'))
        for uri in (wire.SUBMIT, wire.REPLAY, wire.INFO, wire.STREAM, 'x.y',
                    wire.PREFIX + 'other',
                    'com.example.procedure'):
            self.assertFalse(self.allowed(master, uri, 'publish'), uri)
            self.assertFalse(self.allowed(master, uri, 'register'), uri)
        self.assertFalse(self.allowed(master, wire.STATUS, 'register'))
        self.assertFalse(self.allowed(master, wire.REPORT, 'subscribe'))
        self.assertFalse(self.allowed(master, wire.STREAM, 'call'))
        self.assertFalse(self.allowed(master, wire.SUBMIT, 'subscribe'))
        self.assertFalse(self.allowed(master, 'other.topic', 'subscribe'))
        self.assertFalse(self.allowed(master, 'other.proc', 'call'))

    def test_master_permissions_never_grant_publish_or_register(self):
        # publish: its own reports only (the monitor reads them)
        for p in self.perms()['master']:
            self.assertEqual(p['allow']['publish'], p['uri'] == wire.REPORT, p)
            self.assertFalse(p['allow']['register'], p)
            self.assertNotEqual(p['match'], 'prefix', p)

    def test_monitor_reads_and_answers_status_only(self):
        monitor = self.perms()['monitor']
        self.assertTrue(self.allowed(monitor, wire.REPORT, 'subscribe'))
        self.assertTrue(self.allowed(monitor, wire.STREAM, 'subscribe'))
        self.assertTrue(self.allowed(monitor, wire.INFO, 'call'))
        self.assertTrue(self.allowed(monitor, wire.STATUS, 'register'))
        for uri in (wire.SUBMIT, wire.REPLAY, wire.STREAM, wire.REPORT, wire.INFO):
            self.assertFalse(self.allowed(monitor, uri, 'publish'), uri)
            self.assertFalse(self.allowed(monitor, uri, 'register'), uri)
        self.assertFalse(self.allowed(monitor, wire.SUBMIT, 'call'))

    def test_monitor_component_beside_the_sequencer(self):
        components = routerconfig.node_config(8080)['workers'][0]['components']
        self.assertEqual([c['role'] for c in components],
                         [wire.SEQUENCER_ROLE, wire.MONITOR_ROLE])
        self.assertEqual(components[1]['extra'],
                         {'metrics_port': None, 'metrics_host': '127.0.0.1'})
        components = routerconfig.node_config(8080, metrics_port=9100, host='0.0.0.0',
                                              metrics_host='0.0.0.0')['workers'][0]['components']
        self.assertEqual(components[1]['extra'],
                         {'metrics_port': 9100, 'metrics_host': '0.0.0.0'})

    def test_sequencer_may_do_everything(self):
        seq = self.perms()['sequencer']
        for action in ('call', 'register', 'publish', 'subscribe'):
            for uri in (wire.SUBMIT, wire.REPLAY, wire.STREAM):
                self.assertTrue(self.allowed(seq, uri, action), (uri, action))

    def test_open_realm_allows_all(self):
        for name, perms in self.perms(open_realm=True).items():
            for action in ('call', 'register', 'publish', 'subscribe'):
                for uri in (wire.SUBMIT, wire.STREAM, 'buildbot.mq.anything', 'x'):
                    self.assertTrue(self.allowed(perms, uri, action), (name, uri, action))

    def test_disclosure(self):
        # the sequencer's events carry its identity, so masters can drop
        # stream events from anyone else; a master's identity is disclosed
        # to the sequencer on submit (its producer ids are bound to it),
        # replay (replays under way are bounded per session) and info (a
        # refused protocol is logged once per authid)
        for open_realm in (False, True):
            perms = self.perms(open_realm)
            for p in perms['master']:
                told = p['uri'] in (wire.SUBMIT, wire.REPLAY, wire.INFO) or p['match'] == 'prefix'
                self.assertEqual(p['disclose'], {'caller': told, 'publisher': False})
            for p in perms[wire.SEQUENCER_ROLE]:
                self.assertEqual(p['disclose'], {'caller': False, 'publisher': True})

    def test_producers_are_bound_where_masters_authenticate(self):
        def extra(**kw):
            return routerconfig.node_config(8080, **kw)['workers'][0]['components'][0]['extra']
        self.assertFalse(extra()['bind_producers'])
        self.assertTrue(extra(authids=['master1'])['bind_producers'])

    def test_node_config_uses_roles(self):
        cfg = routerconfig.node_config(8080, cbdir='/tmp/cb')
        realm = cfg['workers'][0]['realms'][0]
        self.assertEqual(realm['roles'], routerconfig.roles(False))
        self.assertEqual(cfg['workers'][0]['transports'][0]['auth']['anonymous']['role'],
                         'master')
        self.assertEqual(cfg['workers'][0]['components'][0]['role'], wire.SEQUENCER_ROLE)
        self.assertEqual(cfg['workers'][0]['transports'][0]['endpoint'],
                         {'type': 'tcp', 'port': 8080, 'interface': '127.0.0.1'})
        open_cfg = routerconfig.node_config(8080, open_realm=True)
        self.assertEqual(open_cfg['workers'][0]['realms'][0]['roles'],
                         routerconfig.roles(True))
