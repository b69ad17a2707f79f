import pathlib
import re

from setuptools import find_packages
from setuptools import setup

HERE = pathlib.Path(__file__).parent
URL = 'https://github.com/buildbot-mq-ordered/buildbot-mq-ordered'


def version():
    """The one version, buildbot_mq_ordered.__version__, read from the file:
    importing the package here would need its dependencies installed."""
    text = (HERE / 'buildbot_mq_ordered' / '__init__.py').read_text(encoding='utf-8')
    return re.search(r"^__version__ = '([^']+)'$", text, re.M).group(1)


setup(
    name='buildbot-mq-ordered',
    version=version(),
    description="Totally ordered, lossless multi-master MQ for Buildbot over a Crossbar router",
    long_description=(HERE / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    license_expression='GPL-2.0-only',
    url=URL,
    project_urls={
        'Source': URL,
        'Issues': URL + '/issues',
        'Documentation': URL + '/tree/main/docs',
        'Changelog': URL + '/blob/main/CHANGELOG.rst',
        'Upgrading': URL + '/blob/main/docs/upgrading.rst',
    },
    keywords='buildbot mq multi-master crossbar wamp total-order',
    classifiers=[
        # "Framework :: Buildbot" is no trove classifier: PyPI refuses an
        # upload naming it (.ci/release-check checks every one)
        'Development Status :: 4 - Beta',
        'Environment :: No Input/Output (Daemon)',
        'Framework :: Twisted',
        'Intended Audience :: Developers',
        'Intended Audience :: System Administrators',
        'Operating System :: POSIX :: Linux',
        'Programming Language :: Python :: 3',
        'Programming Language :: Python :: 3 :: Only',
        'Topic :: Software Development :: Build Tools',
        'Topic :: System :: Distributed Computing',
    ],
    packages=find_packages(include=['buildbot_mq_ordered', 'buildbot_mq_ordered.*']),
    package_data={'buildbot_mq_ordered.master': ['dashboard.html']},
    python_requires='>=3.9',
    install_requires=[
        # 4.1.x and the newest are tested (.ci/buildbot-oldest, .ci/run);
        # 4.0 sets up secrets providers after the MQ starts, so a Buildbot
        # secret as c['mq']['secret'] cannot work there
        'buildbot>=4.1,<5',
        'twisted',
        'txaio',
        'autobahn',
        'msgpack',
    ],
    extras_require={
        # psycopg: a PostgreSQL journal; prometheus-client: --metrics-port
        'router': ['crossbar', 'psycopg[binary]', 'prometheus-client'],
        # the cluster's page in Buildbot's web UI (master/dashboard.py)
        'dashboard': ['buildbot-wsgi-dashboards'],
        'bench': ['psutil', 'matplotlib'],
        'test': [
            'crossbar',
            'prometheus-client',
            'buildbot-wsgi-dashboards',
            # the dashboard's test drives Debian's chromium (tests/browser.sh)
            'selenium',
            'buildbot-worker',
            'buildbot-www',
            'psycopg2-binary',    # the masters' database in tests/integration/test_cluster_e2e.py
            'psycopg[binary]',    # the routers' PostgreSQL journal
            'pytest',
            'pytest-twisted',
            'hypothesis',
            'psutil',
            'matplotlib',
            'sphinx',
            # what Buildbot's own integration tests import (tests/support/buildbot_suite.py)
            'parameterized',
            'evalidate',
            'zstandard',
            'lz4',
            'treq',
            'txrequests',
            'pypugjs',
            'markdown',
            'hvac',
        ],
    },
    entry_points={
        'console_scripts': ['buildbot-mq-ordered = buildbot_mq_ordered.cli:main'],
    },
)
