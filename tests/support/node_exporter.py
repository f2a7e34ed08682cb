"""A real node_exporter (the Debian ``prometheus-node-exporter`` binary) for tests: on a free 127.0.0.1 port, every
collector off except the textfile collector, which reads ``*.prom`` files from a directory the test owns. Started
and stopped by its PID; every wait is bounded.
"""

import os
import shutil
import subprocess

import requests

from tests.support.nginx import ChildServer
from tests.support.prometheus import free_port, wait_until

NODE_EXPORTER_BIN = shutil.which('prometheus-node-exporter') or shutil.which('node_exporter') or '/usr/bin/prometheus-node-exporter'


def find_node_exporter():
    return NODE_EXPORTER_BIN if os.access(NODE_EXPORTER_BIN, os.X_OK) else None


class NodeExporter(ChildServer):
    """``node_exporter --collector.disable-defaults --collector.textfile`` reading ``textfile_dir``."""

    def __init__(self, textfile_dir, log_path):
        self.textfile_dir = str(textfile_dir)
        self.log_path = str(log_path)
        self.port = free_port()
        self.target = '127.0.0.1:%d' % self.port
        self.url = 'http://%s/metrics' % self.target

    def start(self, ready_timeout=20):
        command = [NODE_EXPORTER_BIN, '--web.listen-address=' + self.target, '--collector.disable-defaults',
                   '--collector.textfile', '--collector.textfile.directory=' + self.textfile_dir, '--log.level=warn']
        with open(self.log_path, 'ab') as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(self._ready, ready_timeout, message='node_exporter ready on %s' % self.target)
        except AssertionError:
            self.stop()
            raise
        return self

    def _ready(self):
        if self.process.poll() is not None:
            raise AssertionError('node_exporter exited with %s' % self.process.returncode)
        return requests.get(self.url, timeout=2, proxies={'http': None}).status_code == 200

    def metrics_text(self):
        response = requests.get(self.url, timeout=5, proxies={'http': None})
        response.raise_for_status()
        return response.text
