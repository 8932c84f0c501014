"""The built-in web console on the HTTP listener (``http.listener``).

Default run: one broker with its console on a fixed port (21641; 21640-21649
are this file's, 21644-21646 for a three-broker cluster), a topic of 3 partitions with 10 / 7 / 4 records, a
kafka-python group member that commits 3 / 7 / 1 and stays in the group; the
pages fetched over HTTP show the partitions with their offsets, the member with
its assignment and lag = produced - committed per partition, and 404 pages for
unknown names. On three brokers (``cluster`` mark), every broker's console
lists the group with its coordinator and shows its lag (asked of the
coordinator) and the end offsets of partitions led elsewhere.

With ``ODRADEK_BROWSER_TESTS=1`` (skipped otherwise): the same pages in
headless Chromium (Debian's ``chromium`` + ``chromium-driver``, selenium from
PyPI, both installed by the test when missing), which must find the same
things on the rendered page; a screenshot of each page is saved in the test's
tmp dir.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser

import pytest

import kclients
from brokers import BrokerFactory
from kclients import Rec

HTTP_PORT = 21641
BROWSER_HTTP_PORT = 21642
PRODUCED = [10, 7, 4]
COMMITTED = [3, 7, 1]
TOPIC = "console-orders"
# A group id that needs percent-encoding in a URL (space, slash, non-ASCII).
GROUP = "console group/1 ü"
SECRET = "hunter2-not-shown"


class Tables(HTMLParser):
    """Every <table id=...> of a page as rows of cell texts, and all text."""

    def __init__(self):
        super().__init__()
        self.tables: dict = {}
        self.text: list = []
        self._table = None
        self._row = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id", ""), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self._table.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> Tables:
    t = Tables()
    t.feed(html)
    return t


def get(port: int, path: str):
    """(status, content type, body) of a GET."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=15) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def rows(table: list) -> list:
    """A table's rows as dicts keyed by its header row."""
    header, *body = table
    return [dict(zip(header, r)) for r in body]


def group_path(group: str) -> str:
    return "/groups/" + urllib.parse.quote(group, safe="")


def produce_and_commit(bootstrap, topic, group):
    """PRODUCED records into `topic`'s partitions; a kafka-python member of `group`
    (returned, still in the group) commits COMMITTED."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    recs = [Rec(value=f"v{p}-{i}".encode(), key=None, partition=p)
            for p, n in enumerate(PRODUCED) for i in range(n)]
    kclients.produce("kafka-python", bootstrap, topic, recs)
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                      client_id="console-test-client", enable_auto_commit=False,
                      auto_offset_reset="earliest")
    deadline = time.monotonic() + 30
    while len(c.assignment()) < 3:
        assert time.monotonic() < deadline, f"no full assignment: {c.assignment()}"
        c.poll(timeout_ms=200)
    c.commit({TopicPartition(topic, p): OffsetAndMetadata(o, "", -1)
              for p, o in enumerate(COMMITTED)})
    return c


class Scenario:
    """A broker with a produced topic and a group member that committed part of it."""

    def __init__(self, base, http_port):
        self.factory = BrokerFactory(base)
        self.broker = self.factory({"http.listener": f"127.0.0.1:{http_port}",
                                    "ssl.truststore.password": SECRET})
        self.http_port = http_port
        b = self.broker.bootstrap
        kclients.create_topic(b, TOPIC, partitions=3, config={"retention.ms": "123456789"})
        self.consumer = produce_and_commit(b, TOPIC, GROUP)

    def close(self):
        try:
            self.consumer.close(autocommit=False)
        finally:
            self.factory.close()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    s = Scenario(tmp_path_factory.mktemp("console"), HTTP_PORT)
    yield s
    s.close()


def test_overview_lists_the_broker_as_controller(scenario):
    status, ctype, body = get(scenario.http_port, "/")
    assert status == 200 and ctype.startswith("text/html")
    page = parse(body)
    (broker,) = rows(page.tables["brokers"])
    assert broker["id"] == str(scenario.broker.broker_id)
    assert broker["endpoints"] == f"PLAINTEXT://127.0.0.1:{scenario.broker.port}"
    assert "controller" in broker["role"] and "this broker" in broker["role"]


def test_topic_page_shows_partitions_offsets_and_overrides(scenario):
    status, _, body = get(scenario.http_port, "/topics")
    assert status == 200
    assert f'href="/topics/{TOPIC}"' in body
    listed = {r["topic"]: r for r in rows(parse(body).tables["topics"])}
    assert listed[TOPIC]["partitions"] == "3"

    status, _, body = get(scenario.http_port, f"/topics/{TOPIC}")
    assert status == 200
    page = parse(body)
    parts = rows(page.tables["partitions"])
    assert [r["partition"] for r in parts] == ["0", "1", "2"]
    me = str(scenario.broker.broker_id)
    for p, r in enumerate(parts):
        assert (r["leader"], r["replicas"], r["ISR"]) == (me, me, me), r
        assert (r["log start"], r["high watermark"], r["log end"]) == \
            ("0", str(PRODUCED[p]), str(PRODUCED[p])), r
        assert r["size"].endswith("B") and r["size"] != "0 B", r
    configs = {r["name"]: r for r in rows(page.tables["topic-configs"])}
    assert configs["retention.ms"]["value"] == "123456789"
    assert configs["retention.ms"]["source"] == "DYNAMIC_TOPIC_CONFIG"
    assert "override" in configs["retention.ms"][""]
    assert configs["cleanup.policy"]["source"] != "DYNAMIC_TOPIC_CONFIG"


def test_group_pages_show_members_and_lag_per_partition(scenario):
    status, _, body = get(scenario.http_port, "/groups")
    assert status == 200
    assert f'href="{group_path(GROUP)}"' in body
    listed = {r["group"]: r for r in rows(parse(body).tables["groups"])}
    assert listed[GROUP]["state"] == "Stable"
    assert listed[GROUP]["members"] == "1"
    want_total = sum(p - c for p, c in zip(PRODUCED, COMMITTED))
    assert listed[GROUP]["total lag"] == str(want_total)

    status, _, body = get(scenario.http_port, group_path(GROUP))
    assert status == 200
    page = parse(body)
    (member,) = rows(page.tables["members"])
    assert member["client id"] == "console-test-client"
    assert member["assigned partitions"] == f"{TOPIC}: 0, 1, 2"
    lag = rows(page.tables["lag"])
    got = [(r["topic"], r["partition"], r["committed offset"], r["end offset"], r["lag"])
           for r in lag]
    want = [(TOPIC, str(p), str(COMMITTED[p]), str(PRODUCED[p]), str(PRODUCED[p] - COMMITTED[p]))
            for p in range(3)]
    assert got == want
    assert all(r["member"] != "—" for r in lag)


def test_broker_configs_mask_secrets(scenario):
    status, _, body = get(scenario.http_port, "/configs")
    assert status == 200
    assert SECRET not in body
    configs = {r["name"]: r for r in rows(parse(body).tables["broker-configs"])}
    assert configs["ssl.truststore.password"]["value"] == "sensitive, hidden"
    assert configs["ssl.truststore.password"]["source"] == "STATIC_BROKER_CONFIG"
    assert configs["inter.broker.protocol.version"]["value"]
    me = scenario.broker.broker_id
    assert get(scenario.http_port, f"/brokers/{me}/configs")[0] == 200


def test_unknown_names_get_a_404_page(scenario):
    for path in ["/topics/no-such-topic", "/groups/no%20such%20group", "/brokers/77/configs",
                 "/groups/bad%zzescape"]:
        status, ctype, body = get(scenario.http_port, path)
        assert status == 404, path
        assert ctype.startswith("text/html") and "does not exist" in body, path


CLUSTER_HTTP_BASE = 21643  # brokers 1..3 on 21644-21646


@pytest.mark.cluster
def test_groups_of_other_coordinators_and_partitions_led_elsewhere(cluster_factory):
    """Three brokers: every broker's console lists the group with its coordinator, shows its
    members and lag per partition (asked of the coordinator), and the end offset of every
    partition, hosted there or not."""
    c = cluster_factory(3, start=False)
    for b in c.brokers:
        b.overrides["http.listener"] = f"127.0.0.1:{CLUSTER_HTTP_BASE + b.broker_id}"
    c.start()
    topic = c.create_topic(partitions=3, rf=1)
    group = "console cluster/group"
    consumer = produce_and_commit(c.bootstrap, topic, group)
    try:
        ports = {b.broker_id: CLUSTER_HTTP_BASE + b.broker_id for b in c.brokers}
        coordinators = set()
        for broker_id, port in ports.items():
            status, _, body = get(port, "/groups")
            assert status == 200, broker_id
            listed = {r["group"]: r for r in rows(parse(body).tables["groups"])}
            assert group in listed, (broker_id, body)
            coordinators.add(listed[group]["coordinator"])

            status, _, body = get(port, group_path(group))
            assert status == 200, (broker_id, body)
            page = parse(body)
            assert len(rows(page.tables["members"])) == 1, broker_id
            got = [(r["partition"], r["committed offset"], r["end offset"], r["lag"])
                   for r in rows(page.tables["lag"])]
            assert got == [(str(p), str(COMMITTED[p]), str(PRODUCED[p]),
                            str(PRODUCED[p] - COMMITTED[p])) for p in range(3)], broker_id

            status, _, body = get(port, f"/topics/{topic}")
            parts = rows(parse(body).tables["partitions"])
            assert [r["high watermark"] for r in parts] == [str(n) for n in PRODUCED], \
                (broker_id, parts)
            hosted = [r for r in parts if r["log end"] != "—"]
            assert all(r["leader"] == str(broker_id) for r in hosted), (broker_id, parts)

            # Another broker's configs, as it answers DescribeConfigs.
            other = broker_id % 3 + 1
            status, _, body = get(port, f"/brokers/{other}/configs")
            assert status == 200, (broker_id, body)
            configs = {r["name"]: r for r in rows(parse(body).tables["broker-configs"])}
            assert configs["broker.id"]["value"] == str(other), (broker_id, configs["broker.id"])
        assert len(coordinators) == 1, coordinators
    finally:
        consumer.close(autocommit=False)


# ---------------------------------------------------------------- browser ----

BROWSER = os.environ.get("ODRADEK_BROWSER_TESTS") == "1"


def ensure_browser_tools():
    """Debian's chromium and chromium-driver, selenium in this venv: installed when missing."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"],
                       check=True, env=env, stdout=subprocess.DEVNULL)
    try:
        import selenium  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "selenium"], check=True)


@pytest.fixture(scope="module")
def browser():
    ensure_browser_tools()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--proxy-server=direct://", "--proxy-bypass-list=*"]:
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.mark.skipif(not BROWSER, reason="set ODRADEK_BROWSER_TESTS=1 (needs Chromium)")
@pytest.mark.timeout(900)
def test_pages_in_headless_chromium(tmp_path, browser):
    from selenium.webdriver.common.by import By

    s = Scenario(tmp_path / "brokers", BROWSER_HTTP_PORT)
    try:
        base = f"http://127.0.0.1:{BROWSER_HTTP_PORT}"

        def cells(table_id):
            table = browser.find_element(By.ID, table_id)
            header = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
            return [dict(zip(header, [td.text for td in tr.find_elements(By.TAG_NAME, "td")]))
                    for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr")]

        browser.get(base + "/")
        assert "Cluster overview" in browser.title
        assert "controller" in cells("brokers")[0]["role"]
        browser.save_screenshot(str(tmp_path / "overview.png"))

        # Follow the links as a user would: topics -> the topic.
        browser.find_element(By.LINK_TEXT, "Topics").click()
        browser.find_element(By.LINK_TEXT, TOPIC).click()
        parts = cells("partitions")
        assert [(r["partition"], r["high watermark"]) for r in parts] == \
            [(str(p), str(n)) for p, n in enumerate(PRODUCED)]
        browser.save_screenshot(str(tmp_path / "topic.png"))

        browser.find_element(By.LINK_TEXT, "Consumer groups").click()
        browser.find_element(By.LINK_TEXT, GROUP).click()
        assert browser.current_url == base + group_path(GROUP)
        lag = [(r["partition"], r["lag"]) for r in cells("lag")]
        assert lag == [(str(p), str(PRODUCED[p] - COMMITTED[p])) for p in range(3)]
        assert cells("members")[0]["client id"] == "console-test-client"
        browser.set_window_size(1400, 1000)
        browser.save_screenshot(str(tmp_path / "group.png"))
        print(f"screenshots in {tmp_path}")
        for name in ("overview.png", "topic.png", "group.png"):
            assert (tmp_path / name).stat().st_size > 10_000
    finally:
        s.close()
