"""c['mq'] for type 'ordered-wamp': validation, defaults, and Buildbot's
own config loader (the package registers itself on import)."""

from twisted.python.reflect import namedObject
from twisted.trial import unittest

from buildbot.config.errors import ConfigErrors
from buildbot.config.master import MasterConfig
from buildbot.mq.connector import MQConnector
from buildbot.plugins import util
from buildbot.plugins import worker

# imported directly: through buildbot.plugins, `schedulers.ForceScheduler`
# re-emits a Twisted deprecation warning that buildbot.test makes an error
from buildbot.schedulers.forcesched import ForceScheduler

import buildbot_mq_ordered  # noqa: F401  (registers 'ordered-wamp')
from buildbot_mq_ordered.master import config

URL = 'ws://127.0.0.1:8080/ws'


def valid(**kw):
    mq = {'type': 'ordered-wamp', 'router_url': URL}
    mq.update(kw)
    return mq


class Validate(unittest.TestCase):

    def assertOneErrorNaming(self, mq, key, *fragments):
        errors = config.validate(mq)
        self.assertEqual(len(errors), 1, errors)
        self.assertIn(key, errors[0])
        for f in fragments:
            self.assertIn(f, errors[0])
        return errors[0]

    def test_minimal_is_valid(self):
        self.assertEqual(config.validate(valid()), [])
        self.assertEqual(config.validate({'router_url': 'wss://router.example/ws'}), [])

    def test_all_keys_valid(self):
        mq = valid(realm='r', wamp_debug_level='debug', initial_retry_delay=1,
                   max_retry_delay=30, retry_delay_growth=2, retry_delay_jitter=0,
                   max_outbox=10, reorder_buffer_size=1, max_message_size=1024,
                   shutdown_timeout=0, authid='me', secret='s', ca_file=__file__)
        self.assertEqual(config.validate(mq), [])

    def test_router_url_missing(self):
        msg = self.assertOneErrorNaming({'type': 'ordered-wamp'}, "'router_url'",
                                        'required')
        self.assertIn('ordered-wamp', msg)
        self.assertOneErrorNaming({'router_url': None}, "'router_url'", 'required')

    def test_router_url_http(self):
        self.assertOneErrorNaming(valid(router_url='http://127.0.0.1:8080/ws'),
                                  "'router_url'", 'ws://', "'http://127.0.0.1:8080/ws'")
        self.assertOneErrorNaming(valid(router_url='https://h/ws'), "'router_url'")

    def test_router_url_other_bad(self):
        for bad in ['', 'ws://', '127.0.0.1:8080', 8080, ('ws://h/ws',), {'url': 'ws://h/ws'}]:
            self.assertOneErrorNaming(valid(router_url=bad), "'router_url'")

    def test_router_url_list(self):
        # several routers on one journal (high availability)
        urls = ['ws://127.0.0.1:8080/ws', 'wss://router2.example/ws']
        self.assertEqual(config.validate(valid(router_url=urls)), [])
        self.assertOneErrorNaming(valid(router_url=[]), "'router_url'", 'a list of them')
        self.assertOneErrorNaming(valid(router_url=[urls[0], 'http://h/ws']),
                                  "'router_url'", "'http://h/ws' is not")

    def test_router_url_malformed_is_an_error_not_a_crash(self):
        # urlparse raises ValueError here; validate must report, not raise
        try:
            errors = config.validate(valid(router_url='ws://[::1/ws'))
        except ValueError as e:
            self.fail(f"validate raised {e!r}")
        self.assertEqual(len(errors), 1, errors)
        self.assertIn("'router_url'", errors[0])

    def test_router_url_bad_port(self):
        # a port that cannot be connected to is a config error, not a
        # reconnect loop at run time
        for bad in ['ws://h:notaport/ws', 'ws://h:99999/ws']:
            errors = config.validate(valid(router_url=bad))
            self.assertEqual(len(errors), 1, (bad, errors))
            self.assertIn("'router_url'", errors[0])

    def test_router_url_ipv6_ok(self):
        self.assertEqual(config.validate(valid(router_url='ws://[::1]:8080/ws')), [])

    def test_negative_reorder_buffer_size(self):
        self.assertOneErrorNaming(valid(reorder_buffer_size=-1), "'reorder_buffer_size'",
                                  'positive integer', '-1')
        self.assertOneErrorNaming(valid(reorder_buffer_size=0), "'reorder_buffer_size'")

    def test_bool_is_not_an_int(self):
        for key in ('max_outbox', 'reorder_buffer_size', 'max_message_size'):
            self.assertOneErrorNaming(valid(**{key: True}), f"'{key}'", 'True')
        for key in ('initial_retry_delay', 'max_retry_delay', 'retry_delay_growth',
                    'retry_delay_jitter', 'shutdown_timeout'):
            self.assertOneErrorNaming(valid(**{key: False}), f"'{key}'", 'False')

    def test_max_message_size_bounded(self):
        limit = config.MAX_MESSAGE_SIZE_LIMIT
        self.assertEqual(config.validate(valid(max_message_size=limit)), [])
        self.assertOneErrorNaming(valid(max_message_size=limit + 1), "'max_message_size'",
                                  str(limit))

    def test_float_or_str_is_not_an_int(self):
        self.assertOneErrorNaming(valid(max_outbox=1.5), "'max_outbox'")
        self.assertOneErrorNaming(valid(max_message_size='1000'), "'max_message_size'")

    def test_numbers(self):
        self.assertOneErrorNaming(valid(initial_retry_delay=0), "'initial_retry_delay'")
        self.assertOneErrorNaming(valid(retry_delay_growth=0.5), "'retry_delay_growth'")
        self.assertOneErrorNaming(valid(retry_delay_jitter=-0.1), "'retry_delay_jitter'")
        self.assertOneErrorNaming(valid(shutdown_timeout=-1), "'shutdown_timeout'")
        self.assertOneErrorNaming(valid(max_retry_delay='10'), "'max_retry_delay'")

    def test_retry_delays_ordered(self):
        self.assertOneErrorNaming(valid(initial_retry_delay=20), "'initial_retry_delay'",
                                  'max_retry_delay')
        self.assertOneErrorNaming(valid(initial_retry_delay=5, max_retry_delay=1),
                                  "'initial_retry_delay'")
        self.assertEqual(config.validate(valid(initial_retry_delay=5, max_retry_delay=5)),
                         [])

    def test_realm_and_debug_level(self):
        self.assertOneErrorNaming(valid(realm=''), "'realm'")
        self.assertOneErrorNaming(valid(realm=None), "'realm'")
        self.assertOneErrorNaming(valid(wamp_debug_level='loud'), "'wamp_debug_level'",
                                  'trace')

    def test_unknown_key(self):
        msg = self.assertOneErrorNaming(valid(colour='blue'), 'colour')
        self.assertTrue(msg.startswith('unrecognized keys'))
        errors = config.validate(valid(zeta=1, alpha=2))
        self.assertEqual(errors, ["unrecognized keys in c['mq']: alpha, zeta"])

    def test_authid_without_secret(self):
        self.assertOneErrorNaming(valid(authid='me'), "'authid'", 'secret')
        self.assertOneErrorNaming(valid(secret='s'), "'authid'")
        self.assertOneErrorNaming(valid(secret_file=__file__), "'authid'")
        self.assertEqual(config.validate(valid(authid='me', secret_file=__file__)), [])

    def test_unreadable_files_are_errors_naming_the_key(self):
        self.assertOneErrorNaming(valid(ca_file='/nonexistent/ca.pem'), "'ca_file'")
        self.assertOneErrorNaming(valid(authid='me', secret_file='/nonexistent/s'),
                                  "'secret_file'")

    def test_secret_and_secret_file(self):
        self.assertOneErrorNaming(valid(authid='me', secret='s', secret_file=__file__),
                                  "'secret_file'", 'only one')

    def test_secret_may_be_renderable(self):
        self.assertEqual(config.validate(
            valid(authid='me', secret=util.Interpolate('%(secret:mq)s'))), [])
        self.assertEqual(config.validate(valid(authid='me', secret=util.Secret('mq'))), [])
        self.assertOneErrorNaming(valid(authid='me', secret=42), "'secret'")

    def test_optional_strings(self):
        self.assertOneErrorNaming(valid(ca_file=1), "'ca_file'")
        self.assertOneErrorNaming(valid(authid=1, secret='s'), "'authid'")
        self.assertEqual(config.validate(valid(ca_file=None, authid=None)), [])

    def test_several_errors_reported_together(self):
        errors = config.validate({'type': 'ordered-wamp', 'max_outbox': -1, 'x': 1})
        self.assertEqual(len(errors), 3)
        text = '\n'.join(errors)
        for key in ('router_url', 'max_outbox', 'x'):
            self.assertIn(key, text)


class Resolve(unittest.TestCase):

    def test_defaults_filled(self):
        opts = config.resolve(valid())
        self.assertEqual(set(opts), config.KEYS)
        self.assertNotIn('type', opts)
        self.assertEqual(opts['router_url'], URL)
        for key in config.KEYS - {'router_url'}:
            self.assertEqual(opts[key], config.DEFAULTS[key], key)
        self.assertEqual(opts['realm'], 'buildbot')
        self.assertEqual(opts['reorder_buffer_size'], 10000)

    def test_given_values_win(self):
        opts = config.resolve(valid(realm='r', max_outbox=5))
        self.assertEqual(opts['realm'], 'r')
        self.assertEqual(opts['max_outbox'], 5)
        self.assertEqual(opts['max_message_size'], config.DEFAULTS['max_message_size'])

    def test_does_not_mutate(self):
        mq = valid()
        before = dict(mq)
        config.resolve(mq)
        defaults = dict(config.DEFAULTS)
        opts = config.resolve(mq)
        opts['realm'] = 'changed'
        self.assertEqual(mq, before)
        self.assertEqual(config.DEFAULTS, defaults)

    def test_defaults_are_valid(self):
        mq = dict(config.DEFAULTS, router_url=URL)
        self.assertEqual(config.validate(mq), [])
        self.assertEqual(set(config.CHECKS), config.KEYS)


class BuildbotLoader(unittest.TestCase):

    def config_dict(self, mq):
        return {
            'workers': [worker.Worker('w', 'p')],
            'protocols': {'pb': {'port': 'tcp:0'}},
            'builders': [util.BuilderConfig(name='b', workernames=['w'],
                                            factory=util.BuildFactory())],
            'schedulers': [ForceScheduler(name='f', builderNames=['b'])],
            'mq': mq,
        }

    def load(self, mq):
        return MasterConfig.loadFromDict(self.config_dict(mq), 'master.cfg')

    def load_errors(self, mq):
        with self.assertRaises(ConfigErrors) as cm:
            self.load(mq)
        return cm.exception.errors

    def test_registered(self):
        entry = MQConnector.classes['ordered-wamp']
        cls = namedObject(entry['class'])
        from buildbot_mq_ordered.master.mq import OrderedWampMQ
        self.assertIs(cls, OrderedWampMQ)
        self.assertEqual(set(entry['keys']), config.KEYS)

    def test_register_is_idempotent(self):
        patched = MasterConfig.load_mq
        buildbot_mq_ordered.register()
        self.assertIs(MasterConfig.load_mq, patched)

    def test_valid_config_loads(self):
        mq = valid(realm='ci', reorder_buffer_size=500)
        cfg = self.load(dict(mq))
        self.assertEqual(cfg.mq, mq)

    def test_all_keys_accepted_by_buildbot(self):
        mq = valid(realm='r', wamp_debug_level='info', initial_retry_delay=1,
                   max_retry_delay=30, retry_delay_growth=2, retry_delay_jitter=0,
                   max_outbox=10, reorder_buffer_size=1, max_message_size=1024,
                   shutdown_timeout=0, authid='me', secret='s', ca_file=__file__)
        self.assertEqual(self.load(dict(mq)).mq, mq)

    def test_missing_router_url(self):
        errors = self.load_errors({'type': 'ordered-wamp'})
        self.assertEqual(len(errors), 1, errors)
        self.assertIn('router_url', errors[0])

    def test_bad_values_name_their_keys(self):
        errors = self.load_errors(valid(router_url='http://h/ws', reorder_buffer_size=-1,
                                        max_outbox=True))
        self.assertEqual(len(errors), 3, errors)
        for key in ('router_url', 'reorder_buffer_size', 'max_outbox'):
            self.assertEqual(len([e for e in errors if f"'{key}'" in e]), 1, (key, errors))

    def test_unknown_key_reported_once(self):
        errors = self.load_errors(valid(colour='blue'))
        self.assertEqual(len(errors), 1, errors)
        self.assertIn('colour', errors[0])

    def test_authid_without_secret(self):
        errors = self.load_errors(valid(authid='me'))
        self.assertEqual(len(errors), 1, errors)
        self.assertIn('authid', errors[0])

    def test_malformed_url_is_a_config_error(self):
        errors = self.load_errors(valid(router_url='ws://[::1/ws'))
        self.assertEqual(len(errors), 1, errors)
        self.assertIn('router_url', errors[0])

    def test_other_mq_types_untouched(self):
        cfg = self.load({'type': 'simple'})
        self.assertEqual(cfg.mq, {'type': 'simple'})
        # our value checks apply to 'ordered-wamp' only
        cfg = self.load({'type': 'wamp', 'router_url': 'http://x', 'realm': 'r'})
        self.assertEqual(cfg.mq['router_url'], 'http://x')
