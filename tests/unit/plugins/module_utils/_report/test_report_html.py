# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""report.html: everything from the record and the servers escaped, decisions and missing series listed."""

import html.parser

from ansible_collections.canary.release.plugins.module_utils._report.report_html import render_html
from ansible_collections.canary.release.plugins.module_utils._report.report_run import build_report
from ansible_collections.canary.release.plugins.module_utils.time_spec import format_rfc3339

T0 = 1700000000.0
EVIL = '<script>alert("x")</script>&'


def stamp(offset):
    return format_rfc3339(T0 + offset)


def evil_record():
    return {
        'schema': 1, 'service': 'web', 'version': '2' + EVIL, 'previous_version': '1', 'status': 'rolled_back',
        'reason': 'fail: ' + EVIL, 'started_at': stamp(0), 'updated_at': stamp(300), 'finished_at': stamp(300),
        'steps': [
            {'index': 0, 'weight': 5.0, 'verdict': 'pass', 'reason': None, 'started_at': stamp(10), 'at': stamp(100)},
            {'index': 1, 'weight': 25.0, 'verdict': 'fail', 'reason': 'errors ' + EVIL, 'started_at': stamp(110),
             'at': stamp(290)},
        ],
        'events': [{'at': stamp(0), 'message': 'began ' + EVIL}],
    }


class Collector(html.parser.HTMLParser):
    """Tags, image sources and the text of the page, as a browser's parser sees them."""

    def __init__(self):
        super().__init__()
        self.tags, self.images, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == 'img':
            self.images.append(dict(attrs)['src'])

    def handle_data(self, data):
        self.text.append(data)


def parse(page):
    collector = Collector()
    collector.feed(page)
    collector.close()
    return collector


def test_every_value_is_escaped_and_the_text_reads_as_given():
    report, _warnings = build_report({'record': evil_record(), 'metrics': [], 'canary_track': 'track="canary"'},
                                     now=T0 + 400)
    page = render_html(report, charts=['weight.png'])
    assert '<script' not in page and 'alert("x")' not in page
    parsed = parse(page)
    assert 'script' not in parsed.tags
    text = ''.join(parsed.text)
    assert 'Rollout report: web 2' + EVIL in text                  # the title, decoded back by the parser
    assert 'fail: ' + EVIL in text and 'errors ' + EVIL in text and 'began ' + EVIL in text
    assert 'track="canary"' in text
    assert parsed.images == ['weight.png']


def test_decisions_steps_and_missing_series_are_listed():
    report, _warnings = build_report({'record': evil_record(), 'metrics': []}, now=T0 + 400)
    report['missing'] = ['http_errors: canary requests: cannot connect <to> Prometheus']
    page = render_html(report, charts=[], charts_note='matplotlib is not installed')
    text = ''.join(parse(page).text)
    decisions = text.split('Decisions', 1)[1].split('Steps', 1)[0]
    assert [label for label in ('step 0 5%: pass', 'step 1 25%: fail', 'rolled back') if label in decisions] == [
        'step 0 5%: pass', 'step 1 25%: fail', 'rolled back']
    assert decisions.index(stamp(100)) < decisions.index(stamp(290)) < decisions.index(stamp(300))
    assert 'http_errors: canary requests: cannot connect <to> Prometheus' in text
    assert '&lt;to&gt;' in page
    assert 'matplotlib is not installed' in text and '<img' not in page


def test_the_same_report_renders_the_same_bytes():
    first, _warnings = build_report({'record': evil_record(), 'metrics': []}, now=T0 + 400)
    second, _warnings = build_report({'record': evil_record(), 'metrics': []}, now=T0 + 999)
    assert render_html(first, charts=['weight.png']) == render_html(second, charts=['weight.png'])
