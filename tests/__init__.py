# The one place where test-wide warning filters live.
#
# buildbot_mq_ordered.master, then autobahn, are imported before buildbot.test:
# buildbot.test turns every warning into an error, and autobahn's optional
# codecs warn at import. Then MQ type 'ordered-wamp' is registered with
# Buildbot, as master.cfg's import line does.
# Afterwards, deprecations raised *inside* third-party packages we do not
# own (Twisted 26 and Alembic under Buildbot 4.3, autobahn, crossbar) are
# ignored; our own package is not in this list, so its warnings stay errors.
import warnings

import autobahn.twisted.component  # noqa: F401
import autobahn.twisted.wamp  # noqa: F401

import buildbot.test  # noqa: F401  (sets warnings to errors)

import buildbot_mq_ordered

# first: loads autobahn's serializers without the bjdata codec (whose NumPy 1
# build prints a traceback under NumPy 2), as a master does
import buildbot_mq_ordered.master  # noqa: F401,I001

buildbot_mq_ordered.register()

for _module in ('twisted', 'alembic', 'sqlalchemy', 'autobahn', 'txaio', 'crossbar',
                'buildbot', 'buildbot_worker', 'hypothesis', 'treq', 'pkg_resources',
                'setuptools', 'cryptography', 'OpenSSL'):
    warnings.filterwarnings('ignore', category=DeprecationWarning, module=_module + r'(\.|$)')
    warnings.filterwarnings('ignore', category=PendingDeprecationWarning,
                            module=_module + r'(\.|$)')
    # trial re-emits a test's warnings after it with warn_explicit(module=None):
    # the module is then the file's path without '.py'
    for _category in (DeprecationWarning, PendingDeprecationWarning):
        warnings.filterwarnings('ignore', category=_category,
                                module=r'.*[/\\]' + _module + r'([/\\]|$)')
