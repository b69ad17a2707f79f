"""The cluster's page in Buildbot's web UI, in a real headless browser
(Debian's chromium through selenium; ``tests/browser.sh`` installs it): a
real Buildbot master with the ``wsgi_dashboards`` entry of master.cfg, a
real router, two more masters in separate processes (load nodes). The page
loads, shows every master, and its figures are those of ``status --json``;
a screenshot is kept in the test's temporary directory."""

import json
import os
import subprocess
import sys
import tempfile
import time

from twisted.internet import defer
from twisted.internet import threads

from buildbot.test.util.integration import RunMasterBase

import buildbot_mq_ordered
from buildbot_mq_ordered.load.nodes import NodeProcess
from buildbot_mq_ordered.load.nodes import drive
from buildbot_mq_ordered.load.processes import Router
from buildbot_mq_ordered.load.processes import free_port
from tests.support.buildbotmaster import FreshBasedir
from tests.support.buildbotmaster import two_step_config

CHROMIUM = '/usr/bin/chromium'
CHROMEDRIVER = '/usr/bin/chromedriver'
NODES = 2
PER_NODE = 50
DEADLINE = 90     # seconds for the page to show the idle cluster


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(path):
            raise RuntimeError(f"{path} is missing: run `bash tests/browser.sh` (as root)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage',
                '--disable-gpu', '--window-size=1400,1000'):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


# read in one script: the page redraws its table on every update
READ_PAGE = """
const rows = {};
for (const tr of document.querySelectorAll('#masters tr')) {
  const cells = {};
  for (const td of tr.querySelectorAll('td')) cells[td.className] = td.textContent;
  rows[tr.dataset.master] = cells;
}
const text = id => document.getElementById(id).textContent;
return {head: text('head'), sequencer: text('sequencer'), leader: text('leader'),
        health: text('health'), updates: parseInt(text('updates')), masters: rows};
"""


def page_figures(driver):
    """What the page shows (inside its frame)."""
    return driver.execute_script(READ_PAGE)


def differences(shown, status, names):
    """Where the page and status --json differ, or the cluster is not idle
    with every master shown (an empty list: they agree)."""
    if status is None:
        return ['no status']
    out = []
    if set(shown['masters']) != names:
        out.append(f"masters shown: {sorted(shown['masters'])}")
    for key, value in (('head', status['head']), ('sequencer', status['sequencer'])):
        if shown[key] != str(value):
            out.append(f"{key}: page {shown[key]}, status {value}")
    for m in status['masters']:
        row = shown['masters'].get(m['master'], {})
        for cell, key in (('delivered', 'delivered_pos'), ('lag', 'lag'),
                          ('outbox', 'outbox'), ('state', 'state')):
            if row.get(cell) != str(m[key]):
                out.append(f"{m['master']} {cell}: page {row.get(cell)}, status {m[key]}")
        if m['lag'] != 0:
            out.append(f"{m['master']} lags {m['lag']}")
    return out


class DashboardInBrowser(FreshBasedir, RunMasterBase):
    timeout = 240

    def start_nodes(self, router, tmp):
        nodes = [NodeProcess(router.url, f'node{i}', os.path.join(tmp, f'node{i}.json'),
                             messages=PER_NODE, expect=10 ** 9, timeout=200)
                 for i in range(NODES)]
        for n in nodes:
            self.addCleanup(n.stop)
        if not drive(nodes, lambda: all(n.ready for n in nodes), time.monotonic() + 60):
            self.fail("load nodes not ready")
        for n in nodes:
            n.go()
        return nodes

    @defer.inlineCallbacks
    def test_page_shows_every_master_with_the_figures_of_status(self):
        router = Router().start()
        self.addCleanup(router.cleanup)
        self.artifacts = tempfile.mkdtemp(prefix='bmo-dashboard-artifacts-')
        nodes = self.start_nodes(router, self.artifacts)
        web_port = free_port()
        config = two_step_config()
        config['mq'] = {'type': 'ordered-wamp', 'router_url': router.url,
                        'realm': router.realm}
        config['www'] = {'port': f'tcp:{web_port}:interface=127.0.0.1', 'plugins': {}}
        # the one line of master.cfg (docs/operations.rst)
        config['www']['plugins']['wsgi_dashboards'] = [buildbot_mq_ordered.dashboard()]
        yield self.setup_master(config)
        names = {self.master.name} | {n.name for n in nodes}

        # selenium and the status command block: a thread, while this
        # reactor serves the master's web UI
        shown, status, screenshot = yield threads.deferToThread(
            self.browse, f'http://127.0.0.1:{web_port}/#/mq', router.url, names)

        self.assertTrue(os.path.getsize(screenshot) > 10000, screenshot)
        self.assertEqual(differences(shown, status, names), [])
        self.assertGreaterEqual(status['head'], NODES * PER_NODE)
        self.assertEqual(shown['health'], 'healthy')

    def browse(self, url, router_url, names):
        """Open the page; once it shows the idle cluster and status --json
        says the same, return both and the screenshot's path."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait
        driver = browser()
        try:
            driver.get(url)
            WebDriverWait(driver, 60).until(ec.frame_to_be_available_and_switch_to_it(
                (By.CSS_SELECTOR, 'iframe[title="MQ cluster"]')))
            deadline = time.monotonic() + DEADLINE
            last = None
            while time.monotonic() < deadline:
                status = self.status_json(router_url)
                # the page polls every 2 s: read it after its next update
                seen = page_figures(driver)['updates']
                WebDriverWait(driver, 30).until(lambda d: page_figures(d)['updates'] > seen)
                shown = page_figures(driver)
                # idle (the masters' own start-up messages included), and as status says
                last = differences(shown, status, names)
                if not last and shown['health'] == 'healthy':
                    path = os.path.join(self.artifacts, 'dashboard.png')
                    driver.switch_to.default_content()
                    driver.save_screenshot(path)
                    return shown, status, path
            raise AssertionError(f"the page never showed the idle cluster as status --json "
                                 f"does; last differences: {last}")
        finally:
            driver.quit()

    @staticmethod
    def status_json(router_url):
        """status --json's answer, or None (said why on stderr)."""
        proc = subprocess.run([sys.executable, '-m', 'buildbot_mq_ordered.cli', 'status',
                               '--router', router_url, '--json'],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if proc.returncode not in (0, 1):
            sys.stderr.write(proc.stderr.decode(errors='replace'))
            return None
        return json.loads(proc.stdout)
