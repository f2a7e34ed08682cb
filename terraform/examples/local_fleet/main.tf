# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# N local "hosts" for tests and the demo: one network namespace each, joined to the root namespace by a veth
# pair (a /30 link), running its own sshd and the sample app. scripts/fleet_host.sh does the work; create- and
# destroy-time local-exec provisioners call it with everything in the environment (no shell interpolation).
# Destroy-time provisioners may only read `self`, so the triggers hold what destroy needs.

locals {
  name_prefix = var.name_prefix != "" ? var.name_prefix : substr("cf-${replace(lower(terraform.workspace), "/[^a-z0-9.-]/", "-")}", 0, 40)
  subnet_cidr = var.subnet_cidr != "" ? var.subnet_cidr : "10.213.${parseint(substr(md5(local.name_prefix), 0, 2), 16)}.0/24"
  subnet_bits = 30 - tonumber(split("/", local.subnet_cidr)[1])

  # Terraform 1.0 validation blocks cannot compare two variables: file() of a message fails the plan with it.
  baseline_version = var.baseline_count == 0 || var.baseline_version != "" ? var.baseline_version : file("ERROR: baseline_version is required when baseline_count > 0")

  host_list = concat(
    [for index in range(var.canary_count) : { track = "canary", name = "canary-${index + 1}", version = var.release_version }],
    [for index in range(var.baseline_count) : { track = "baseline", name = "baseline-${index + 1}", version = local.baseline_version }],
  )

  hosts = { for position, host in local.host_list : host.name => merge(host, {
    namespace = "${local.name_prefix}-${host.name}"
    network   = cidrsubnet(local.subnet_cidr, local.subnet_bits, position)
  }) }
}

resource "null_resource" "host" {
  for_each = local.hosts

  # Everything here is what the host is made of (a change replaces the host) and what destroy reads.
  triggers = {
    namespace          = each.value.namespace
    veth               = "cf${substr(md5(each.value.namespace), 0, 10)}"
    host_address       = cidrhost(each.value.network, 1)
    ns_address         = cidrhost(each.value.network, 2)
    prefix_length      = "30"
    host_dir           = "${var.work_dir}/${each.value.namespace}"
    script             = abspath("${path.module}/scripts/fleet_host.sh")
    track              = each.value.track
    instance           = each.key
    app_version        = each.value.version
    app_script         = var.app_script
    app_port           = tostring(var.app_port)
    app_args_json      = jsonencode(lookup(var.app_args, each.value.track, []))
    python             = var.python
    ssh_port           = tostring(var.ssh_port)
    ssh_user           = var.ssh_user
    ssh_authorized_key = trimspace(var.ssh_authorized_key)
  }

  provisioner "local-exec" {
    command = "bash \"$FLEET_SCRIPT\""
    environment = {
      FLEET_ACTION       = "create"
      FLEET_SCRIPT       = self.triggers.script
      NAMESPACE          = self.triggers.namespace
      VETH               = self.triggers.veth
      HOST_ADDRESS       = self.triggers.host_address
      NS_ADDRESS         = self.triggers.ns_address
      PREFIX_LENGTH      = self.triggers.prefix_length
      HOST_DIR           = self.triggers.host_dir
      SSH_PORT           = self.triggers.ssh_port
      SSH_USER           = self.triggers.ssh_user
      SSH_AUTHORIZED_KEY = self.triggers.ssh_authorized_key
      PYTHON             = self.triggers.python
      APP_SCRIPT         = self.triggers.app_script
      APP_PORT           = self.triggers.app_port
      APP_VERSION        = self.triggers.app_version
      APP_ARGS_JSON      = self.triggers.app_args_json
      INSTANCE           = self.triggers.instance
      READY_TIMEOUT      = tostring(var.ready_timeout)
    }
  }

  provisioner "local-exec" {
    when    = destroy
    command = "bash \"$FLEET_SCRIPT\""
    environment = {
      FLEET_ACTION = "destroy"
      FLEET_SCRIPT = self.triggers.script
      NAMESPACE    = self.triggers.namespace
      VETH         = self.triggers.veth
      HOST_DIR     = self.triggers.host_dir
    }
  }
}
