# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Watching a release from outside: :mod:`.release_metrics` publishes its state as Prometheus metrics (the
node_exporter textfile collector's ``.prom`` file, a Pushgateway)."""
