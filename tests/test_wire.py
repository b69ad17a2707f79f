"""wire: message encoding and checks; routerconfig: roles."""

import json

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from twisted.trial import unittest

from buildbot_mq_ordered import routerconfig
from buildbot_mq_ordered import wire
from buildbot_mq_ordered.wire import MessageRejected
from buildbot_mq_ordered.wire import encode_message
from tests.util import ODD_DATA
from tests.util import ODD_KEYS

BIG = 10 ** 7

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() |
    st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) |
    st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)

# text that UTF-8 can encode (no lone surrogates)
utf8_text = st.text(alphabet=st.characters(blacklist_categories=('Cs',)))


class Encode(unittest.TestCase):

    def test_odd_keys_and_data_round_trip(self):
        for key in ODD_KEYS:
            for data in ODD_DATA:
                k, text, _ = encode_message(key, data, BIG)
                self.assertIsInstance(text, str)
                self.assertEqual(k, list(key))
                self.assertEqual(wire.decode_data(text), data)
                # and through the JSON a WAMP transport would use
                k2, data2 = json.loads(json.dumps([k, text]))
                self.assertEqual(tuple(k2), key)
                self.assertEqual(wire.decode_data(data2), data)

    def test_key_list_accepted(self):
        self.assertEqual(encode_message(['a', 'b'], 1, BIG), (['a', 'b'], '1', 1))

    def test_key_is_copied(self):
        key = ['a']
        k, _, _ = encode_message(key, 1, BIG)
        k.append('b')
        self.assertEqual(key, ['a'])

    def test_compact_unescaped_json(self):
        _, text, _ = encode_message(('k',), {'a': [1, 2], 'u': 'ü'}, BIG)
        self.assertEqual(text, '{"a":[1,2],"u":"ü"}')

    def test_rejects_not_serialisable(self):
        with self.assertRaises(MessageRejected) as cm:
            encode_message(('k',), {'x': object()}, BIG)
        self.assertIn('JSON', str(cm.exception))
        with self.assertRaises(MessageRejected):
            encode_message(('k',), {1, 2}, BIG)
        with self.assertRaises(MessageRejected):
            encode_message(('k',), {('t',): 1}, BIG)

    def test_rejects_circular(self):
        d = {}
        d['self'] = d
        with self.assertRaises(MessageRejected):
            encode_message(('k',), d, BIG)

    def test_default_converter_used(self):
        def default(o):
            if isinstance(o, complex):
                return [o.real, o.imag]
            raise TypeError('no')
        self.assertEqual(encode_message(('k',), 1 + 2j, BIG, default=default)[1],
                         '[1.0,2.0]')
        with self.assertRaises(MessageRejected):
            encode_message(('k',), object(), BIG, default=default)

    def test_rejects_oversize(self):
        _, text, _ = encode_message(('k',), 'x' * 98, 100)   # 100 bytes with quotes
        self.assertEqual(len(text), 100)
        with self.assertRaises(MessageRejected) as cm:
            encode_message(('k',), 'x' * 99, 100)
        self.assertIn('101', str(cm.exception))
        self.assertIn('100', str(cm.exception))

    def test_oversize_counts_utf8_bytes(self):
        # 30 chars of 3 bytes each + 2 quotes = 32 chars but 92 bytes
        data = '€' * 30
        self.assertEqual(len(json.dumps(data, ensure_ascii=False).encode('utf-8')), 92)
        encode_message(('k',), data, 92)
        with self.assertRaises(MessageRejected) as cm:
            encode_message(('k',), data, 91)
        self.assertIn('92 bytes', str(cm.exception))
        # 4-byte characters, limit just under the byte size
        with self.assertRaises(MessageRejected):
            encode_message(('k',), '🙂' * 10, 41)
        encode_message(('k',), '🙂' * 10, 42)

    @given(utf8_text, st.integers(1, 200))
    @settings(max_examples=200, deadline=None)
    def test_size_limit_is_exact_in_bytes(self, data, max_size):
        size = len(json.dumps(data, ensure_ascii=False).encode('utf-8'))
        if size <= max_size:
            self.assertEqual(wire.decode_data(encode_message(('k',), data, max_size)[1]),
                             data)
        else:
            with self.assertRaises(MessageRejected):
                encode_message(('k',), data, max_size)

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

    @given(st.lists(utf8_text, max_size=5), json_values)
    @settings(max_examples=200, deadline=None)
    def test_round_trip_property(self, key, data):
        k, text, _ = encode_message(tuple(key), data, BIG)
        self.assertEqual(k, key)
        self.assertEqual(wire.decode_data(text), data)
        entry = [1, 1, k, text]
        self.assertTrue(wire.is_entry(entry))
        self.assertTrue(wire.is_submission([1, k, text]))


GOOD_ENTRIES = [
    [1, 1, ['a'], '1'],
    (5, 0, ('a', ''), 'null'),
    [10**12, 3, [], '{}'],
    [1, -1, ['#', '*', 'a.b'], ''],
]
BAD_ENTRIES = [
    None, 1, 'x', b'x', {}, [], [1, 1, ['a']], [1, 1, ['a'], '1', 'extra'],
    [0, 1, ['a'], '1'],            # positions start at 1
    [-1, 1, ['a'], '1'],
    [True, 1, ['a'], '1'],         # bool is not a position
    [1.0, 1, ['a'], '1'],
    ['1', 1, ['a'], '1'],
    [1, True, ['a'], '1'],
    [1, 1.0, ['a'], '1'],
    [1, None, ['a'], '1'],
    [1, 1, 'a', '1'],              # key must be a list
    [1, 1, None, '1'],
    [1, 1, ['a', 1], '1'],
    [1, 1, [None], '1'],
    [1, 1, ['a'], 1],              # data travels as JSON text
    [1, 1, ['a'], None],
    [1, 1, ['a'], {'x': 1}],
    {0: 1, 1: 1, 2: ['a'], 3: '1'},
]
GOOD_SUBMISSIONS = [
    [1, ['a'], '1'],
    (99, ('a', ''), 'null'),
    [1, [], ''],
]
BAD_SUBMISSIONS = [
    None, 1, 'abc', [], [1, ['a']], [1, ['a'], '1', 'x'],
    [0, ['a'], '1'], [-3, ['a'], '1'], [True, ['a'], '1'], [1.0, ['a'], '1'],
    ['1', ['a'], '1'], [1, 'a', '1'], [1, ['a', 2], '1'], [1, ['a'], 2],
    [1, ['a'], None], [1, None, '1'],
]

scalars = (st.none() | st.booleans() | st.integers(-3, 2**64) | st.floats() |
           st.text(max_size=4) | st.binary(max_size=4))
garbage = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) |
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

    @given(st.tuples(element, element, element, element))
    @settings(max_examples=200, deadline=None)
    def test_garbage_entries_judged_consistently(self, t):
        e = list(t)
        expected = (type(e[0]) is int and e[0] > 0 and type(e[1]) is int and
                    isinstance(e[2], (list, tuple)) and
                    all(isinstance(k, str) for k in e[2]) and isinstance(e[3], str))
        self.assertEqual(wire.is_entry(e), expected)
        self.assertEqual(wire.is_submission(e[1:]),
                         type(e[1]) is int and e[1] > 0 and
                         isinstance(e[2], (list, tuple)) and
                         all(isinstance(k, str) for k in e[2]) and
                         isinstance(e[3], str))

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
        for uri in (wire.SUBMIT, wire.REPLAY, wire.STREAM):
            self.assertTrue(uri.startswith(wire.PREFIX))
        self.assertEqual(len({wire.SUBMIT, wire.REPLAY, wire.STREAM}), 3)


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

    def test_two_roles(self):
        self.assertEqual(set(self.perms()), {'master', 'sequencer'})
        self.assertEqual(set(self.perms(True)), {'master', 'sequencer'})

    def test_master_may_call_and_subscribe_only(self):
        master = self.perms()['master']
        self.assertTrue(self.allowed(master, wire.SUBMIT, 'call'))
        self.assertTrue(self.allowed(master, wire.REPLAY, 'call'))
        self.assertTrue(self.allowed(master, wire.STREAM, 'subscribe'))
        for uri in (wire.SUBMIT, wire.REPLAY, wire.STREAM, 'x.y', wire.PREFIX + 'other',
                    'com.example.procedure'):
            self.assertFalse(self.allowed(master, uri, 'publish'), uri)
            self.assertFalse(self.allowed(master, uri, 'register'), uri)
        self.assertFalse(self.allowed(master, wire.STREAM, 'call'))
        self.assertFalse(self.allowed(master, wire.SUBMIT, 'subscribe'))
        self.assertFalse(self.allowed(master, 'other.topic', 'subscribe'))
        self.assertFalse(self.allowed(master, 'other.proc', 'call'))

    def test_master_permissions_never_grant_publish_or_register(self):
        for p in self.perms()['master']:
            self.assertFalse(p['allow']['publish'], p)
            self.assertFalse(p['allow']['register'], p)
            self.assertNotEqual(p['match'], 'prefix', p)

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
        # callers are never disclosed; the sequencer's events carry its
        # identity, so masters can drop stream events from anyone else
        for open_realm in (False, True):
            perms = self.perms(open_realm)
            for p in perms['master']:
                self.assertEqual(p['disclose'], {'caller': False, 'publisher': False})
            for p in perms[wire.SEQUENCER_ROLE]:
                self.assertEqual(p['disclose'], {'caller': False, 'publisher': True})

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
