# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The outputs contract shared with examples/local_fleet (the provision role reads exactly these).

output "hosts" {
  description = "One item per instance: id (the instance id), address (its private IPv4 address) and track (canary or baseline)."
  value = [for name, instance in aws_instance.host : {
    id      = instance.id
    address = instance.private_ip
    track   = local.hosts[name].track
  }]
}

output "target_groups" {
  description = "Per track (canary, baseline), the ARN of the track's target group (for canary.release.alb_weights); null for a track without instances."
  value = {
    canary   = aws_lb_target_group.track["canary"].arn
    baseline = var.baseline_count > 0 ? aws_lb_target_group.track["baseline"].arn : null
  }
}
