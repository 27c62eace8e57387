import ipaddress
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from core.enrichment import (
    STORED_FIELDS,
    TRAFFIC_SOURCES,
    DeviceInfo,
    Enrichment,
    GeoLocation,
    anonymize_ip,
    classify_traffic_source,
    enrich,
    locate_ip,
    parse_user_agent,
    referrer_host,
    stored_enrichment,
)
from core.enrichment import geo as geo_module
from core.enrichment import ip as ip_module

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
EDGE_WINDOWS = CHROME_WINDOWS + " Edg/124.0.2478.67"
SAFARI_MACOS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4.1 Safari/605.1.15"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
CHROMEOS = (
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
)
# iPad UAs also carry "Mobile/..."; the iPad token has to win.
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1"
)
ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36"
)
ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 12; SM-T870) AppleWebKit/537.36 "
    "(KHTML, like Gecko) SamsungBrowser/22.0 Chrome/111.0.5563.116 Safari/537.36"
)
FIREFOX_ANDROID_TABLET = "Mozilla/5.0 (Android 13; Tablet; rv:125.0) Gecko/125.0 Firefox/125.0"
KINDLE_SILK = (
    "Mozilla/5.0 (Linux; Android 9; KFMAWI) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Silk/124.3.1 like Chrome/124.0.6367.179 Safari/537.36"
)
WINDOWS_PHONE = (
    "Mozilla/5.0 (compatible; MSIE 10.0; Windows Phone 8.0; Trident/6.0; IEMobile/10.0; ARM; Touch; NOKIA; Lumia 920)"
)
# Windows 7 desktops often advertise "Tablet PC 2.0".
IE_TABLET_PC = (
    "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0; SLCC2; "
    ".NET CLR 2.0.50727; Media Center PC 6.0; Tablet PC 2.0)"
)
CUBOT_PHONE = (
    "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
GOOGLEBOT_SMARTPHONE = (
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.6367.118 Mobile Safari/537.36 "
    "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)
HEADLESS_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36"
)

INTERNAL = ("shop.example", "www.blog.example:8443")


# --- parse_user_agent -------------------------------------------------------


@pytest.mark.parametrize(
    ("ua", "expected"),
    [
        (CHROME_WINDOWS, DeviceInfo("desktop", "Chrome", "Windows")),
        (EDGE_WINDOWS, DeviceInfo("desktop", "Edge", "Windows")),
        (SAFARI_MACOS, DeviceInfo("desktop", "Safari", "Mac OS X")),
        (FIREFOX_LINUX, DeviceInfo("desktop", "Firefox", "Ubuntu")),
        (CHROMEOS, DeviceInfo("desktop", "Chrome", "Chrome OS")),
        (IE_TABLET_PC, DeviceInfo("desktop", "IE", "Windows")),
        (IPHONE, DeviceInfo("mobile", "Mobile Safari", "iOS")),
        (IPAD, DeviceInfo("tablet", "Mobile Safari", "iOS")),
        (ANDROID_PHONE, DeviceInfo("mobile", "Chrome Mobile", "Android")),
        (CUBOT_PHONE, DeviceInfo("mobile", "Chrome Mobile", "Android")),
        (ANDROID_TABLET, DeviceInfo("tablet", "Samsung Internet", "Android")),
        (FIREFOX_ANDROID_TABLET, DeviceInfo("tablet", "Firefox Mobile", "Android")),
        (KINDLE_SILK, DeviceInfo("tablet", "Amazon Silk", "Android")),
        (WINDOWS_PHONE, DeviceInfo("mobile", "IE Mobile", "Windows Phone")),
        (GOOGLEBOT, DeviceInfo("bot", "Googlebot", "unknown")),
        (GOOGLEBOT_SMARTPHONE, DeviceInfo("bot", "Googlebot", "Android")),
        (HEADLESS_CHROME, DeviceInfo("bot", "HeadlessChrome", "Linux")),
        ("curl/8.5.0", DeviceInfo("bot", "curl", "unknown")),
    ],
)
def test_parse_user_agent(ua, expected):
    assert parse_user_agent(ua) == expected


@pytest.mark.parametrize("ua", [None, "", "   ", "asdf"])
def test_parse_user_agent_empty_or_unrecognised_is_unknown(ua):
    assert parse_user_agent(ua) == DeviceInfo("unknown", "unknown", "unknown")


def test_parse_user_agent_ignores_surrounding_whitespace_and_huge_tails():
    assert parse_user_agent(f"  {IPHONE}\n") == parse_user_agent(IPHONE)
    assert parse_user_agent(IPHONE + " x" * 50_000).device_type == "mobile"


def test_parse_user_agent_result_is_immutable():
    info = parse_user_agent(CHROME_WINDOWS)
    with pytest.raises(AttributeError):
        info.device_type = "mobile"  # type: ignore[misc]


# --- referrer_host ----------------------------------------------------------


@pytest.mark.parametrize(
    ("referrer", "expected"),
    [
        ("https://www.Google.COM/search?q=x", "google.com"),
        ("https://news.ycombinator.com/item?id=1", "news.ycombinator.com"),
        ("http://www.example.com.:8080/a", "example.com"),
        ("example.com/path", "example.com"),
        ("http://[2001:DB8::1]:8080/", "2001:db8::1"),
        ("", None),
        (None, None),
        ("about:blank", None),
        ("not a url", None),
        ("http://[::1", None),
    ],
)
def test_referrer_host(referrer, expected):
    assert referrer_host(referrer) == expected


# --- classify_traffic_source ------------------------------------------------


def test_rule1_explicit_traffic_source_wins_over_everything():
    props = {"traffic_source": "Internal", "recommendation_id": "r1"}
    assert classify_traffic_source("https://www.google.com/", props, INTERNAL) == "internal"


def test_rule1_ignores_values_outside_the_known_set():
    props = {"traffic_source": "newsletter"}
    assert classify_traffic_source("https://www.google.com/", props, INTERNAL) == "search"
    assert classify_traffic_source(None, {"traffic_source": 5}, INTERNAL) == "direct"


def test_rule2_recommendation_from_properties_beats_referrer():
    ref = "https://www.google.com/"
    assert classify_traffic_source(ref, {"source": "recommendation"}, INTERNAL) == "recommendation"
    assert classify_traffic_source(ref, {"recommendation_id": "abc"}, INTERNAL) == "recommendation"
    assert classify_traffic_source(None, {"recommendation_id": 0}, INTERNAL) == "recommendation"


def test_rule2_needs_a_real_recommendation_marker():
    assert classify_traffic_source(None, {"recommendation_id": None}, INTERNAL) == "direct"
    assert classify_traffic_source(None, {"recommendation_id": ""}, INTERNAL) == "direct"
    assert classify_traffic_source(None, {"source": "newsletter"}, INTERNAL) == "direct"


@pytest.mark.parametrize("referrer", [None, "", "   "])
def test_rule3_no_referrer_is_direct(referrer):
    assert classify_traffic_source(referrer, None, INTERNAL) == "direct"
    assert classify_traffic_source(referrer, {}, ()) == "direct"


@pytest.mark.parametrize(
    "referrer",
    [
        "https://partner.example/page?utm_source=recommendation",
        "https://partner.example/page?utm_medium=Recommended",
        "https://partner.example/page?ref=rec",
        # ahead of the search-engine rule
        "https://www.google.com/url?ref=rec",
    ],
)
def test_rule4_recommendation_query_params(referrer):
    assert classify_traffic_source(referrer, None, INTERNAL) == "recommendation"


def test_rule4_other_param_values_do_not_count():
    ref = "https://partner.example/page?utm_source=newsletter&ref=record"
    assert classify_traffic_source(ref, None, INTERNAL) == "external"


@pytest.mark.parametrize(
    "referrer",
    [
        "https://www.google.com/",
        "https://www.google.co.uk/",
        "https://google.de/search?q=x",
        "https://www.bing.com/search?q=x",
        "https://duckduckgo.com/",
        "https://search.yahoo.com/search?p=x",
        "https://yandex.ru/search/?text=x",
        "https://www.baidu.com/s?wd=x",
        "https://www.ecosia.org/search?q=x",
        "https://search.brave.com/search?q=x",
        "https://www.startpage.com/",
        "https://search.naver.com/search.naver?query=x",
    ],
)
def test_rule5_search_engines(referrer):
    assert classify_traffic_source(referrer, None, INTERNAL) == "search"


@pytest.mark.parametrize(
    "referrer",
    [
        "https://mail.google.com/mail/u/0/",  # Gmail is not a search
        "https://brave.com/",
        "https://notgoogle.com/",
        "https://bing.com.evil.example/",
    ],
)
def test_rule5_lookalikes_are_external(referrer):
    assert classify_traffic_source(referrer, None, INTERNAL) == "external"


@pytest.mark.parametrize(
    ("referrer", "expected"),
    [
        ("https://shop.example/search?term=shoes", "search"),
        ("https://shop.example/search", "search"),
        ("https://shop.example/catalog?q=shoes", "search"),
        ("https://shop.example/catalog?query=", "search"),
        ("https://m.shop.example/recommended/42", "recommendation"),
        ("https://shop.example/home/for-you", "recommendation"),
        ("https://shop.example/products/42", "internal"),
        ("https://shop.example/searchlight-review", "internal"),
        ("https://blog.example/post", "internal"),  # www./port stripped from config
        ("https://www.blog.example/post", "internal"),
    ],
)
def test_rule6_internal_hosts(referrer, expected):
    assert classify_traffic_source(referrer, None, INTERNAL) == expected


def test_rule6_only_applies_to_configured_hosts():
    ref = "https://shop.example/search?q=shoes"
    assert classify_traffic_source(ref, None, ()) == "external"
    assert classify_traffic_source(ref, None, ["other.example"]) == "external"
    # a suffix that is not a subdomain boundary must not match
    assert classify_traffic_source("https://evilshop.example/", None, INTERNAL) == "external"


@pytest.mark.parametrize(
    "referrer",
    ["https://news.ycombinator.com/item?id=1", "android-app://com.google.android.gm/"],
)
def test_rule7_other_hosts_are_external(referrer):
    assert classify_traffic_source(referrer, None, INTERNAL) == "external"


@pytest.mark.parametrize("referrer", ["not a url", "about:blank", "http://[::1"])
def test_rule7_unparsable_referrer_is_external(referrer):
    assert classify_traffic_source(referrer, None, INTERNAL) == "external"


def test_traffic_sources_constant():
    assert TRAFFIC_SOURCES == ("direct", "search", "recommendation", "internal", "external")


# --- anonymize_ip -----------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("1.2.3.4", "1.2.3.0"),
        (" 203.0.113.255 ", "203.0.113.0"),
        ("2001:db8:85a3:8d3:1319:8a2e:370:7348", "2001:db8:85a3::"),
        ("2001:0DB8:0001:ffff::1", "2001:db8:1::"),
        ("fe80::1%eth0", "fe80::"),
        ("::ffff:1.2.3.4", "1.2.3.0"),  # IPv4-mapped is treated as IPv4
    ],
)
def test_anonymize_ip(ip, expected):
    assert anonymize_ip(ip) == expected


@pytest.mark.parametrize("ip", [None, "", "bogus", "1.2.3", "256.1.1.1", "1.2.3.4:80", "2001:db8::g"])
def test_anonymize_ip_invalid(ip):
    assert anonymize_ip(ip) is None


def _public_by_ipaddress(address: int) -> bool:
    addr = ipaddress.IPv4Address(address)
    return addr.is_global and not (addr.is_multicast or addr.is_reserved)


def test_ipv4_public_ranges_agree_with_ipaddress():
    # The fast check answers from ranges cut at the edges of ipaddress's own networks: at every
    # edge, next to it, and at 200,000 random addresses it must say what ipaddress says.
    assert ip_module.IPV4_PUBLIC_RANGES is not None
    starts, _ = ip_module.IPV4_PUBLIC_RANGES
    probes = {n for start in starts for n in (start - 1, start, start + 1) if 0 <= n < 1 << 32}
    probes.update(random.Random(7).randrange(1 << 32) for _ in range(200_000))
    probes.update(int(ipaddress.IPv4Address(ip)) for ip in ("100.64.0.1", "192.0.0.9", "192.0.0.170", "8.8.8.8"))
    wrong = [n for n in sorted(probes) if ip_module.ipv4_is_public(n) != _public_by_ipaddress(n)]
    assert wrong == []
    # Both answers occur: a table of one value would pass the loop above only by luck.
    assert {ip_module.ipv4_is_public(n) for n in probes} == {True, False}


@pytest.mark.parametrize(
    "text",
    [
        "1.2.3.4",
        " 1.2.3.4 ",
        "0.0.0.0",
        "255.255.255.255",
        "01.2.3.4",
        "1.2.3",
        "1.2.3.256",
        "0x1.2.3.4",
        "1.2.3.4%eth0",
        "1.2.3.4:80",
        "\u0661.2.3.4",
        "1.2.3.4\x00",
        "::ffff:1.2.3.4",
        "2001:db8::1",
        "",
        "bogus",
    ],
)
def test_ipv4_fast_parse_agrees_with_ipaddress(text):
    try:
        expected = ipaddress.ip_address(text.strip())
    except ValueError:
        expected = None
    parsed = ip_module.ipv4_int(text)
    if isinstance(expected, ipaddress.IPv4Address):
        assert parsed == int(expected)
    else:
        assert parsed is None  # IPv6 and invalid text take the ipaddress path


def test_ipv4_answers_without_the_range_table(monkeypatch):
    # Another Python without ipaddress._IPv4Constants: every address is checked by ipaddress.
    monkeypatch.setattr(ip_module, "IPV4_PUBLIC_RANGES", None)
    geo_module._locate_cached.cache_clear()
    try:
        assert locate_ip("8.8.8.8") == GeoLocation("US", None, None)
        assert locate_ip("100.64.0.1") == GeoLocation(None, None, None)
    finally:
        geo_module._locate_cached.cache_clear()


# --- locate_ip --------------------------------------------------------------

NOWHERE = GeoLocation(None, None, None)


def test_locate_ip_public_addresses():
    # Values from the GeoLite2 snapshot bundled with geoip2fast 1.2.2.
    assert locate_ip("8.8.8.8") == GeoLocation("US", None, None)
    assert locate_ip("81.2.69.142").country == "GB"
    assert locate_ip("2001:4860:4860::8888").country == "US"
    assert locate_ip("::ffff:8.8.8.8").country == "US"


# Answers of the single-module enrichment (before it became a package), same data file: the lazy
# loader must give them unchanged.
KNOWN_COUNTRIES = {
    "8.8.8.8": "US",
    "1.1.1.1": "AU",
    "9.9.9.9": "US",
    "208.67.222.222": "US",
    "185.60.216.35": "IE",
    "77.88.8.8": "RU",
    "114.114.114.114": "CN",
    "200.160.2.3": "BR",
    "41.63.0.1": "ZM",
    "2a00:1450:4001:80b::200e": "DE",
    "2a02:6b8::feed:0ff": "RU",
    "2400:cb00::1": "US",
    " 81.2.69.142 ": "GB",
}


@pytest.mark.parametrize(("ip", "country"), KNOWN_COUNTRIES.items())
def test_locate_ip_known_countries(ip, country):
    assert locate_ip(ip) == GeoLocation(country, None, None)


def test_locate_ip_uses_the_ipv6_data_file():
    locate_ip("8.8.8.8")
    reader = geo_module.DATABASE.reader()
    assert reader is not None
    assert Path(reader.get_database_path()).name == "geoip2fast-ipv6.dat.gz"


def test_a_database_that_cannot_load_locates_nothing(caplog):
    database = geo_module.CountryDatabase(data_files=("no-such-file.dat.gz",))
    assert database.locate("8.8.8.8") == NOWHERE
    assert database.locate("1.1.1.1") == NOWHERE
    assert not database.loaded
    # The failure is logged once, not per lookup.
    assert sum("could not be loaded" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize(
    "ip",
    [
        "10.0.0.1",
        "127.0.0.1",
        "192.168.1.1",
        "100.64.0.1",
        "224.0.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::1",
        "1.2.3",  # inet_aton would read this as 1.2.0.3 and find China
        "::8.8.8.8",  # IPv4-compatible (reserved); geoip2fast alone says US
        "bogus",
        "",
        None,
    ],
)
def test_locate_ip_non_public_or_invalid(ip):
    assert locate_ip(ip) == NOWHERE


def test_geoip_load_leaves_environment_alone():
    # geoip2fast sets PYTHONWARNINGS/PYTHONIOENCODING on import; a fresh
    # process is needed because the database loads once per process.
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "PYTHONIOENCODING")}
    code = (
        "import os; from core.enrichment import locate_ip;"
        "print(locate_ip('8.8.8.8').country, os.environ.get('PYTHONWARNINGS'),"
        " os.environ.get('PYTHONIOENCODING'))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["US", "None", "None"]
    assert out.stderr == ""


def test_importing_enrichment_leaves_geoip2fast_and_the_environment_alone():
    # Importing the package loads nothing; the first lookup loads geoip2fast and puts back what its
    # import changes, and geoip2fast itself is left as it was.
    root = Path(__file__).resolve().parents[2]
    code = """
import os, sys
before = dict(os.environ)
import core.enrichment
from core.enrichment import locate_ip
assert dict(os.environ) == before, "import changed the environment"
assert "geoip2fast" not in sys.modules, "import loaded geoip2fast"
assert locate_ip("8.8.8.8").country == "US"
assert dict(os.environ) == before, "the first lookup changed the environment"
from geoip2fast import geoip2fast
measure = geoip2fast.get_mem_usage
assert (measure.__module__, measure.__name__) == ("geoip2fast.geoip2fast", "get_mem_usage"), measure
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok"]


def test_package_reexports_every_public_name():
    import core.enrichment as package

    modules = {"device", "event", "geo", "ip", "traffic_source"}
    public = {name for name in vars(package) if not name.startswith("_") and name not in modules}
    assert sorted(package.__all__) == sorted(public)
    assert package.DEVICE_TYPES == ("desktop", "mobile", "tablet")


# --- enrich -----------------------------------------------------------------


def _enrich(**overrides):
    args = {
        "user_agent": IPHONE,
        "referrer": "https://www.google.com/",
        "ip_address": "8.8.8.8",
        "country": None,
        "region": None,
        "city": None,
        "properties": None,
    }
    args.update(overrides)
    return enrich(**args)


def test_enrich_full_result():
    assert _enrich() == Enrichment(
        device_type="mobile",
        browser="Mobile Safari",
        os="iOS",
        traffic_source="search",
        referrer_host="google.com",
        country="US",
        region=None,
        city=None,
        ip_address="8.8.8.0",
    )


def test_enrich_client_geo_wins_over_lookup():
    e = _enrich(country="de", region="Bavaria", city=" Munich ")
    assert (e.country, e.region, e.city) == ("DE", "Bavaria", "Munich")


def test_enrich_client_region_city_kept_when_country_is_looked_up():
    e = _enrich(country=None, region="Bavaria", city="Munich")
    assert (e.country, e.region, e.city) == ("US", "Bavaria", "Munich")


@pytest.mark.parametrize("country", ["", "  ", "USA", "--"])
def test_enrich_unusable_client_country_falls_back_to_lookup(country):
    assert _enrich(country=country).country == "US"


def test_enrich_looks_up_raw_ip_before_anonymizing():
    # 1.1.1.1 and its /24 base sit in different networks in the database.
    assert locate_ip("1.1.1.1").country == "AU"
    assert locate_ip("1.1.1.0").country == "US"
    e = _enrich(ip_address="1.1.1.1")
    assert e.country == "AU"
    assert e.ip_address == "1.1.1.0"


def test_enrich_stores_anonymized_ip_by_default():
    assert _enrich(ip_address="2001:4860:4860::8888").ip_address == "2001:4860:4860::"


def test_enrich_anonymize_false_keeps_ip():
    assert _enrich(ip_address="1.1.1.1", anonymize=False).ip_address == "1.1.1.1"
    assert _enrich(ip_address="2001:4860:4860::8888", anonymize=False).ip_address == ("2001:4860:4860::8888")


def test_enrich_invalid_or_missing_ip():
    e = _enrich(ip_address="not-an-ip", anonymize=False)
    assert (e.ip_address, e.country) == (None, None)
    e = _enrich(ip_address=None)
    assert (e.ip_address, e.country) == (None, None)


def test_enrich_private_ip_has_no_country_but_is_still_anonymized():
    e = _enrich(ip_address="192.168.1.77")
    assert (e.country, e.ip_address) == (None, "192.168.1.0")


def test_enrich_passes_properties_and_internal_hosts_through():
    e = _enrich(
        referrer="https://shop.example/for-you",
        internal_hosts=("shop.example",),
        user_agent=None,
    )
    assert (e.traffic_source, e.referrer_host) == ("recommendation", "shop.example")
    assert (e.device_type, e.browser, e.os) == ("unknown", "unknown", "unknown")
    e = _enrich(referrer=None, properties={"traffic_source": "internal"})
    assert (e.traffic_source, e.referrer_host) == ("internal", None)


def test_enrich_is_keyword_only():
    with pytest.raises(TypeError):
        enrich(IPHONE, None, None, None, None, None, None)  # type: ignore[misc]


# --- stored_enrichment (the ingest path) ------------------------------------

_STORED_CASES = [
    {"user_agent": CHROME_WINDOWS, "referrer": "https://www.google.com/search?q=x", "ip_address": "1.1.1.1"},
    {
        "user_agent": IPHONE,
        "ip_address": "2001:4860:4860::8888",
        "country": "de",
        "region": " Bavaria ",
        "city": "Munich",
    },
    {"user_agent": "Googlebot/2.1 (+http://www.google.com/bot.html)", "ip_address": "10.0.0.1", "referrer": "   "},
    {"referrer": "https://app.example.com/for-you", "properties": {"source": "Recommendation"}},
    {"properties": {"traffic_source": "SEARCH"}, "ip_address": "bogus"},
    {"ip_address": " 81.2.69.142 ", "properties": {"recommendation_id": "r1"}},
    {},
]


@pytest.mark.parametrize("anonymize", [True, False])
@pytest.mark.parametrize("event", _STORED_CASES)
def test_stored_enrichment_is_enrich_as_the_events_table_stores_it(event, anonymize):
    hosts = frozenset({"example.com"})
    expected = enrich(
        user_agent=event.get("user_agent"),
        referrer=event.get("referrer"),
        ip_address=event.get("ip_address"),
        country=event.get("country"),
        region=event.get("region"),
        city=event.get("city"),
        properties=event.get("properties"),
        internal_hosts=hosts,
        anonymize=anonymize,
    )
    blank_when_absent = {"ip_address", "country", "region", "city", "referrer_host"}
    row = dict(zip(STORED_FIELDS, stored_enrichment(event, hosts, anonymize), strict=True))
    assert row == {
        name: (getattr(expected, name) or "") if name in blank_when_absent else getattr(expected, name)
        for name in STORED_FIELDS
    }


def test_stored_enrichment_of_an_unhashable_value_is_computed_uncached():
    # Validation makes these strings; should a list get through, the answer is the uncached one.
    stored = stored_enrichment({"region": ["x"], "ip_address": "8.8.8.8"}, frozenset(), True)
    row = dict(zip(STORED_FIELDS, stored, strict=True))
    assert row["country"] == "US" and row["region"] == "" and row["ip_address"] == "8.8.8.0"
