# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Canary (and optional baseline) EC2 instances for one release, one target group per track with health checks,
# and the attachments. No listener is changed: the weights belong to canary.release.alb_weights.

locals {
  # Terraform 1.0 validation blocks cannot compare two variables: file() of a message fails the plan with it.
  baseline_version = var.baseline_count == 0 || var.baseline_version != "" ? var.baseline_version : file("ERROR: baseline_version is required when baseline_count > 0")
  image_check      = var.ami_id != "" || var.launch_template_id != "" ? true : file("ERROR: set ami_id or launch_template_id")

  host_list = concat(
    [for index in range(var.canary_count) : { track = "canary", name = "canary-${index + 1}", version = var.release_version }],
    [for index in range(var.baseline_count) : { track = "baseline", name = "baseline-${index + 1}", version = local.baseline_version }],
  )
  hosts  = { for position, host in local.host_list : host.name => merge(host, { position = position }) }
  tracks = var.baseline_count > 0 ? ["canary", "baseline"] : ["canary"]

  # Target group names: at most 32 characters, unique per release (service and version).
  release_id = substr(md5("${var.service}/${var.release_version}"), 0, 8)
}

resource "aws_instance" "host" {
  for_each = local.image_check ? local.hosts : {}

  ami                    = var.ami_id != "" ? var.ami_id : null
  instance_type          = var.instance_type != "" ? var.instance_type : null
  subnet_id              = var.subnet_ids[each.value.position % length(var.subnet_ids)]
  vpc_security_group_ids = length(var.security_group_ids) > 0 ? var.security_group_ids : null
  key_name               = var.key_name != "" ? var.key_name : null
  iam_instance_profile   = var.iam_instance_profile != "" ? var.iam_instance_profile : null
  user_data              = lookup(var.user_data, each.value.track, null)

  dynamic "launch_template" {
    for_each = var.launch_template_id != "" ? [var.launch_template_id] : []
    content {
      id      = launch_template.value
      version = var.launch_template_version
    }
  }

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
  }

  tags = merge(var.tags, {
    Name    = "${var.service}-${each.key}"
    Service = var.service
    Track   = each.value.track
    Version = each.value.version
  })
}

resource "aws_lb_target_group" "track" {
  for_each = toset(local.tracks)

  name                 = "${substr(var.service, 0, 14)}-${local.release_id}-${substr(each.key, 0, 4)}"
  port                 = var.app_port
  protocol             = var.target_group_protocol
  target_type          = "instance"
  vpc_id               = var.vpc_id
  deregistration_delay = var.deregistration_delay

  health_check {
    enabled             = true
    path                = var.health_check.path
    matcher             = var.health_check.matcher
    interval            = var.health_check.interval
    timeout             = var.health_check.timeout
    healthy_threshold   = var.health_check.healthy_threshold
    unhealthy_threshold = var.health_check.unhealthy_threshold
    port                = "traffic-port"
    protocol            = var.target_group_protocol
  }

  tags = merge(var.tags, {
    Service = var.service
    Track   = each.key
    Version = each.key == "canary" ? var.release_version : local.baseline_version
  })
}

resource "aws_lb_target_group_attachment" "host" {
  for_each = aws_instance.host

  target_group_arn = aws_lb_target_group.track[local.hosts[each.key].track].arn
  target_id        = each.value.id
  port             = var.app_port
}
