"""Figure and Markdown tables for bench/results/judge_sim.json.

    python bench/judge_sim/report.py bench/results/judge_sim.json [--plot out.png] [--markdown]
"""

import argparse
import json
import sys

LABELS = {
    'judge': 'judge (this collection)',
    'judge_watched': 'judge, restarted after each pass (4 tests)',
    'judge_no_dispersion': 'judge, no dispersion correction',
    'sprt_two_sample': 'two-sample SPRT',
    'sprt_known_baseline': 'known-baseline SPRT (oracle)',
    'fixed_sample': 'exact fixed-sample test',
    'flagger_typical': 'Flagger typical (99 %, 5 checks)',
    'flagger_tuned': 'Flagger tuned (oracle p_b)',
    'kayenta': 'Kayenta-style Mann-Whitney, 60 min',
}
SHORT = {
    'judge': 'judge', 'judge_watched': 'judge watched', 'judge_no_dispersion': 'judge raw', 'sprt_two_sample': 'SPRT 2s',
    'sprt_known_baseline': 'SPRT known', 'fixed_sample': 'fixed', 'flagger_typical': 'Flagger',
    'flagger_tuned': 'Flagger tuned', 'kayenta': 'Kayenta',
}
COLORS = {
    'judge': '#1b5e20', 'judge_watched': '#33691e', 'judge_no_dispersion': '#81c784', 'sprt_two_sample': '#1565c0',
    'sprt_known_baseline': '#64b5f6', 'fixed_sample': '#6a1b9a', 'flagger_typical': '#c62828',
    'flagger_tuned': '#ef6c00', 'kayenta': '#757575',
}


def _pct(value):
    return '–' if value is None else '%.2f' % (100.0 * value)


def _num(value):
    return '–' if value is None else '%.0f' % value


def _ratio(a, b):
    return '–' if a is None or b is None or not b else '%.2f' % (a / b)


def _fail(stats):
    return 'n/a' if stats is None else _pct(stats['fail'])


def _requests(stats):
    return 'n/a' if stats is None else _num(stats['mean_canary_requests'])


def _short_name(name):
    return name.replace('grid ', '')


def target_summary(output):
    """Lines saying which targets are met, listing every miss."""
    rows = output['targets']
    lines = []
    for key, label in (('false_rollback', 'False rollback <= 1 % (Clopper-Pearson 95 % upper bound <= 1.5 %)'),
                       ('false_rollback_watched', 'False rollback of the watched release (the test restarted after '
                                                  'each pass, up to 4 tests), same limits')):
        nulls = [row for row in rows if key in row]
        misses = [row for row in nulls if not row[key + '_ok']]
        lines.append('* %s: %d of %d ratio-1 scenarios meet it.' % (label, len(nulls) - len(misses), len(nulls)))
        for row in misses:
            lines.append('  * miss: %s: %.2f %% (upper bound %.2f %%)'
                         % (row['name'], 100 * row[key], 100 * row[key + '_ci95_high']))
    onset = [row for row in rows if 'power_watched' in row]
    misses = [row for row in onset if not row['power_watched_ok']]
    lines.append('* Power >= 99 %% when the regression starts after 10 minutes, watched after a pass: %d of %d '
                 'delayed-onset scenarios meet it.' % (len(onset) - len(misses), len(onset)))
    for row in misses:
        lines.append('  * miss: %s: %.2f %%' % (row['name'], 100 * row['power_watched']))
    design = [row for row in rows if 'power' in row]
    misses = [row for row in design if not row['power_ok']]
    lines.append('* Power >= 99 %% at the design effect (ratio 2): %d of %d scenarios meet it.'
                 % (len(design) - len(misses), len(design)))
    for row in misses:
        lines.append('  * miss: %s: %.2f %%%s' % (row['name'], 100 * row['power'],
                                                  ' (24 h horizon too short)' if row.get('horizon_binding') else ''))
    for key, limit, label in (('requests_vs_two_sample_sprt', 1.3, 'the two-sample SPRT'),
                              ('requests_vs_tuned_flagger', 0.5, 'the tuned Flagger rule')):
        usable = [row for row in rows if row.get(key) is not None and not row.get('horizon_binding')]
        misses = [row for row in usable if row[key] > limit]
        lines.append('* Mean canary requests to a decision <= %g x %s (ratio 1 and 2, where the horizon does not cut '
                     'runs short): %d of %d scenarios meet it.' % (limit, label, len(usable) - len(misses), len(usable)))
        for row in misses:
            lines.append('  * miss: %s: %.2f x' % (row['name'], row[key]))
    return '\n'.join(lines)


def headline(output):
    """The README's headline table: ratio 1 and 2 at >= 1 req/s (grid), and every other group at ratio 1 and 2."""
    lines = ['| scenario | judge fail % | fail CP95 high % | judge w/o dispersion fail % | undecided % | judge N | SPRT 2s N '
             '| known-baseline SPRT N | Flagger tuned N | judge/SPRT | judge/Flagger tuned |', '|' + '---|' * 11]
    for item in output['scenarios']:
        scenario = item['scenario']
        if scenario['ratio'] not in (1.0, 2.0) or (scenario['group'] == 'grid' and scenario['traffic'] < 1.0):
            continue
        stats = item['methods']
        judge = stats['judge']
        tuned = stats['flagger_tuned']
        lines.append('| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |' % (
            _short_name(scenario['name']), _pct(judge['fail']), _pct(judge['fail_ci95'][1]),
            _pct(stats['judge_no_dispersion']['fail']), _pct(judge['undecided']), _num(judge['mean_canary_requests']),
            _num(stats['sprt_two_sample']['mean_canary_requests']),
            _num(stats['sprt_known_baseline']['mean_canary_requests']), _requests(tuned),
            _ratio(judge['mean_canary_requests'], stats['sprt_two_sample']['mean_canary_requests']),
            'n/a' if tuned is None else _ratio(judge['mean_canary_requests'], tuned['mean_canary_requests'])))
    return '\n'.join(lines)


def _decision_cell(stats, ratio):
    verdict = 'pass' if ratio == 1.0 else 'fail'
    share = stats[verdict]
    text = '%s %.1f %%' % (verdict, 100.0 * share) if share < 0.9995 else '%s 100 %%' % verdict
    if stats['undecided'] >= 0.001:
        text += ' (%.1f %% undecided)' % (100.0 * stats['undecided'])
    minutes = stats['median_minutes']
    duration = '%.1f h' % (minutes / 60.0) if minutes >= 90 else '%g min' % round(minutes, 2)
    requests = stats['mean_canary_requests_decided'] or stats['mean_canary_requests']
    return '%s, %s requests, %s' % (text, format(int(round(requests)), ','), duration)


def decision_tables(output):
    """docs/analysis.md's "How long a decision takes" tables: the judge at 10 and 100 req/s, 5 % and 50 % share."""
    by_name = dict((item['scenario']['name'], item['methods']['judge']) for item in output['scenarios'])
    lines = []
    for share in (5, 50):
        lines.extend(['Canary share %d %%:' % share, '',
                      '| baseline errors | true ratio | 10 req/s total | 100 req/s total |', '|---|---|---|---|'])
        for base in (1, 0.1):
            for ratio in (1, 2, 5):
                cells = [_decision_cell(by_name['grid t=%g s=%g%% p=%g%% r=%g' % (traffic, share, base, ratio)],
                                        float(ratio)) for traffic in (10, 100)]
                label = '1 (identical)' if ratio == 1 else ratio
                lines.append('| %g %% | %s | %s | %s |' % (base, label, cells[0], cells[1]))
        lines.append('')
    return '\n'.join(lines)


def markdown(output):
    """Markdown tables of every scenario: decisions (% of runs) and mean canary requests to a decision."""
    methods = ('judge', 'judge_watched', 'judge_no_dispersion', 'sprt_two_sample', 'sprt_known_baseline',
               'fixed_sample', 'flagger_typical', 'flagger_tuned', 'kayenta')
    lines = ['Fail (roll back) rate, % of runs; for the judge also pass % and undecided % at the 24 h horizon.', '',
             '| scenario | judge fail | judge pass | judge undecided | ' + ' | '.join(SHORT[m] for m in methods[1:])
             + ' |', '|' + '---|' * (3 + len(methods))]
    for item in output['scenarios']:
        stats = item['methods']
        judge = stats['judge']
        lines.append('| %s | %s | %s | %s | %s |' % (
            _short_name(item['scenario']['name']), _pct(judge['fail']), _pct(judge['pass']), _pct(judge['undecided']),
            ' | '.join(_fail(stats[m]) for m in methods[1:])))
    lines.extend(['', 'Mean canary requests until the decision (runs still undecided at the horizon count with what '
                  'they had seen), and the judge\'s ratio to the two-sample SPRT and to the tuned Flagger rule.', '',
                  '| scenario | ' + ' | '.join(SHORT[m] for m in methods) + ' | judge / SPRT 2s | judge / Flagger tuned |',
                  '|' + '---|' * (3 + len(methods))])
    for item in output['scenarios']:
        stats = item['methods']
        judge = stats['judge']['mean_canary_requests']
        tuned = stats['flagger_tuned']['mean_canary_requests'] if stats['flagger_tuned'] else None
        lines.append('| %s | %s | %s | %s |' % (
            _short_name(item['scenario']['name']), ' | '.join(_requests(stats[m]) for m in methods),
            _ratio(judge, stats['sprt_two_sample']['mean_canary_requests']), _ratio(judge, tuned)))
    return '\n'.join(lines)


def plot(output, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    scenarios = output['scenarios']
    figure, axes = plt.subplots(2, 2, figsize=(17, 11))
    # 1. False rollbacks (ratio 1).
    axis = axes[0][0]
    nulls = [item for item in scenarios if item['scenario']['ratio'] == 1.0]
    for offset, method in enumerate(('judge', 'judge_no_dispersion', 'sprt_two_sample', 'flagger_tuned',
                                     'flagger_typical', 'kayenta')):
        xs, ys = [], []
        for index, item in enumerate(nulls):
            stats = item['methods'][method]
            if stats is None:
                continue
            xs.append(index + (offset - 2.5) * 0.1)
            ys.append(max(stats['fail'], 1e-4))
        axis.scatter(xs, ys, s=14, color=COLORS[method], label=LABELS[method])
    axis.axhline(0.01, color='black', lw=0.8, ls='--')
    axis.set_yscale('log')
    axis.set_ylim(8e-5, 1.2)
    axis.set_xticks(range(len(nulls)))
    axis.set_xticklabels([item['scenario']['name'].replace('grid ', '') for item in nulls], rotation=90, fontsize=6)
    axis.set_ylabel('false rollback rate (ratio 1; 1e-4 = none)')
    axis.set_title('False rollbacks of a good canary (dashed: 1 % target)')
    axis.legend(fontsize=7, loc='upper left')
    # 2. Operating characteristic.
    axis = axes[0][1]
    for key, style in (('t=10 s=5% p=1%', '-'), ('t=100 s=50% p=1%', ':')):
        rows = sorted((item for item in scenarios if item['scenario']['group'] == 'grid'
                       and item['scenario']['name'].startswith('grid ' + key + ' ')),
                      key=lambda item: item['scenario']['ratio'])
        for method in ('judge', 'sprt_two_sample', 'sprt_known_baseline', 'flagger_tuned', 'kayenta'):
            if any(item['methods'][method] is None for item in rows):
                continue
            axis.plot([item['scenario']['ratio'] for item in rows], [item['methods'][method]['fail'] for item in rows],
                      style, marker='o', ms=3, color=COLORS[method],
                      label='%s (%s)' % (SHORT[method], key))
    axis.axvline(output['max_ratio'], color='black', lw=0.8, ls='--')
    axis.set_xscale('log')
    axis.set_xticks([1, 1.25, 1.5, 2, 5, 10])
    axis.set_xticklabels(['1', '1.25', '1.5', '2', '5', '10'])
    axis.set_xlabel('true error ratio canary / baseline')
    axis.set_ylabel('P(roll back)')
    axis.set_title('Operating characteristic (dashed: design effect max_ratio)')
    axis.legend(fontsize=6, ncol=2)
    # 3. Requests to a decision relative to the two-sample SPRT and tuned Flagger.
    axis = axes[1][0]
    design = [item for item in scenarios if item['scenario']['ratio'] in (1.0, 2.0)
              and max(item['methods']['judge']['undecided'], item['methods']['sprt_two_sample']['undecided']) <= 0.01]
    xs = range(len(design))
    two = [item['methods']['judge']['mean_canary_requests'] / item['methods']['sprt_two_sample']['mean_canary_requests']
           for item in design]
    tuned = [item['methods']['judge']['mean_canary_requests'] / item['methods']['flagger_tuned']['mean_canary_requests']
             if item['methods']['flagger_tuned'] else float('nan') for item in design]
    axis.scatter(xs, two, s=16, color=COLORS['sprt_two_sample'], label='judge / two-sample SPRT (target <= 1.3)')
    axis.scatter(xs, tuned, s=16, color=COLORS['flagger_tuned'], label='judge / tuned Flagger (target <= 0.5)')
    axis.set_yscale('log')
    axis.axhline(1.3, color=COLORS['sprt_two_sample'], lw=0.8, ls='--')
    axis.axhline(0.5, color=COLORS['flagger_tuned'], lw=0.8, ls='--')
    axis.set_xticks(list(xs))
    axis.set_xticklabels([item['scenario']['name'].replace('grid ', '') for item in design], rotation=90, fontsize=6)
    axis.set_ylabel('mean canary requests to a decision, ratio')
    axis.set_title('Cost of a decision at ratio 1 and 2 (scenarios the 24 h horizon does not cut short)')
    axis.legend(fontsize=7)
    # 4. Failed canary requests before a decision for bad canaries.
    axis = axes[1][1]
    bad = [item for item in scenarios if item['scenario']['group'] == 'grid' and item['scenario']['ratio'] >= 2.0
           and item['scenario']['traffic'] >= 10]
    for offset, method in enumerate(('judge', 'sprt_two_sample', 'sprt_known_baseline', 'flagger_tuned',
                                     'flagger_typical', 'kayenta')):
        xs, ys = [], []
        for index, item in enumerate(bad):
            stats = item['methods'][method]
            if stats is None:
                continue
            xs.append(index + (offset - 2.5) * 0.1)
            ys.append(max(stats['mean_canary_errors'], 0.1))
        axis.scatter(xs, ys, s=14, color=COLORS[method], label=LABELS[method])
    axis.set_yscale('log')
    axis.set_xticks(range(len(bad)))
    axis.set_xticklabels([item['scenario']['name'].replace('grid ', '') for item in bad], rotation=90, fontsize=6)
    axis.set_ylabel('mean failed canary requests until the decision')
    axis.set_title('Users hurt by a bad canary (ratio >= 2, >= 10 req/s)')
    axis.legend(fontsize=7)
    runs = output.get('runs_note') or '%d runs per scenario' % output['runs_per_scenario']
    figure.suptitle('canary.release judge, %s, alpha=%g beta=%g max_ratio=%g, %gs windows, %gh horizon'
                    % (runs, output['alpha'], output['beta'], output['max_ratio'], output['window_seconds'],
                       output['horizon_hours']))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument('results')
    parser.add_argument('--plot')
    parser.add_argument('--markdown', action='store_true')
    parser.add_argument('--decision-tables', action='store_true', help="docs/analysis.md's tables of decision times")
    args = parser.parse_args(argv)
    with open(args.results) as handle:
        output = json.load(handle)
    if args.plot:
        plot(output, args.plot)
    if args.decision_tables:
        print(decision_tables(output))
    if args.markdown:
        print(target_summary(output))
        print()
        print(headline(output))
        print()
        print(markdown(output))
    return 0


if __name__ == '__main__':
    sys.exit(main())
