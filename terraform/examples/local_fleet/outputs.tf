# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The outputs contract shared with modules/aws_canary_fleet (the provision role reads exactly these).

output "hosts" {
  description = "One item per host: id (the network namespace), address (its IPv4 address, where sshd and the app listen) and track (canary or baseline)."
  value = [for name, host in null_resource.host : {
    id      = host.triggers.namespace
    address = host.triggers.ns_address
    track   = host.triggers.track
  }]
}

output "target_groups" {
  description = "Per track (canary, baseline), the local analogue of a target group: the list of the track's app servers as address:port, ready for an NGINX upstream (traffic_nginx_canary). null for a track without hosts."
  value = { for track in ["canary", "baseline"] : track => (
    length([for host in null_resource.host : host if host.triggers.track == track]) == 0 ? null
    : [for host in null_resource.host : "${host.triggers.ns_address}:${host.triggers.app_port}" if host.triggers.track == track]
  ) }
}
