{#- Retire nodes: salt-run state.orchestrate orch.ceph_openstack_retire
        pillar='{"ceph_openstack_retire": {"minions": ["cmp3"]}}'
    (test=True first; README "Retiring a node").

    A controller or compute leaves: the keys it held are rotated on each cluster, then
    everything the formula put on it is taken out. Refused, changing nothing, while a
    minion is still named by a target of the pillar (a later highstate or rollout would
    give it the new keys: take it out first), is a mon, or has no accepted key here, and
    while the controller or compute target matches no minion at all, unless
    ceph_openstack_retire:last says the retiring minions were the last of that role.

    sync and validate the fleet (orch/preflight.jinja) -> the retiring minions that answer
    (in rollout:timeout + rollout:gather_job_timeout): synced, then each checks that no
    libvirt domain there uses a secret of the formula (ceph_openstack.retire.ready; unless
    ceph_openstack_retire:force) -> for each cluster whose keys they held, the key
    rotation's steps (orch/rotation.jinja) with the fleet that stays: a copy of a key left
    on a retired disk no longer logs in -> on the minions that answer, their options,
    secrets, keyrings and ceph.conf removed (ceph_openstack.retire.node).

    The keys a minion held: those it has keyrings or libvirt secrets of
    (ceph_openstack.held). A minion that does not answer (gone for good) is retired from
    the cluster side: every key a controller or compute reads is rotated, nothing waits
    for it, and a last step names it. Each run rotates what is still held: a re-run after
    a failure completes the retirement, a re-run after a complete one changes nothing
    (but rotates again for a minion that does not answer). #}
{%- from "ceph_openstack/map.jinja" import co, clusters with context %}
{%- from "orch/preflight.jinja" import steps as preflight_steps, validate, waits,
    master_ready with context %}
{%- from "orch/rotation.jinja" import acting_mon, rotation_steps with context %}
{%- set request = pillar.get('ceph_openstack_retire') %}
{%- set request = request if request is mapping else {} %}
{%- set minions = request.get('minions') %}
{%- set problems = [] %}
{%- if minions is string or minions is not sequence or not minions
       or minions | reject('string') | list
       or minions | reject('match', '^[A-Za-z0-9_.-]+$') | list %}
{%-   do problems.append('ceph_openstack_retire:minions must be a non-empty list of minion '
                         ~ 'IDs, e.g. {"ceph_openstack_retire": {"minions": ["cmp3"]}}') %}
{%-   set minions = [] %}
{%- endif %}
{%- for flag in ['force', 'last'] if request.get(flag, false) is not sameas true
                                    and request.get(flag, false) is not sameas false %}
{%-   do problems.append('ceph_openstack_retire:' ~ flag ~ ' must be true or false') %}
{%- endfor %}
{%- set match = salt['ceph_openstack_rollout.matched'] %}
{%- if minions %}
{%-   set known = match(minions | join(','), 'list') %}
{%-   for minion in minions if minion not in known %}
{%-     do problems.append(minion ~ ' has no accepted key on this master (salt-key -L): '
                           ~ 'nothing to retire. To end the keys a node held without it, '
                           ~ 'rotate them: orch.ceph_openstack_rotate') %}
{%-   endfor %}
{#-   Still named: the master's own data (accepted keys, cached grains and pillar), as the
      mine's access rules are matched when a minion reads a key. #}
{%-   set seen = [] %}
{%-   for name, on in clusters.items() %}
{%-     for role in ['mon', 'controller', 'compute'] %}
{%-       set tgt = on.targets[role] %}
{#-       Another cluster's own target (its mons, or a role it overrides) is named under
          ceph_openstack:clusters:<name>. #}
{%-       set own = not on.main and (role == 'mon' or tgt != co.targets[role]) %}
{%-       set key = ('ceph_openstack:clusters:' ~ name ~ ':' if own else 'ceph_openstack:')
                    ~ 'targets:' ~ role %}
{%-       if (key, tgt) not in seen %}
{%-         do seen.append((key, tgt)) %}
{%-         for minion in match('( ' ~ tgt ~ ' ) and L@' ~ minions | join(','))
              if minion in minions %}
{%-           do problems.append(minion ~ ' is still named by ' ~ key ~ ' (' ~ tgt ~ '): '
                                 ~ ('a mon is not retired here, it leaves Ceph first'
                                    if role == 'mon' else
                                    'a later highstate or rollout would give it the new '
                                    ~ 'keys. Take it out of that target (pillar, or the '
                                    ~ 'grain it matches), refresh its pillar, then retire '
                                    ~ 'it again')) %}
{%-         endfor %}
{%-       endif %}
{%-     endfor %}
{%-   endfor %}
{%- endif %}

{#- The fleet that stays: a role whose target matches no minion gets no rotation step, but
    only when the request says the retiring minions were the last of it (a mistyped target
    would otherwise leave every node of that role with a dead key). #}
{%- set t = co.targets %}
{%- set nodes = {'controller': t.controller, 'compute': t.compute} %}
{%- for role in ['controller', 'compute'] if minions and not match(t[role]) %}
{%-   if request.get('last') is sameas true %}
{%-     do nodes.update({role: ''}) %}
{%-   else %}
{%-     do problems.append('ceph_openstack:targets:' ~ role ~ ' (' ~ t[role] ~ ') matches no '
                           ~ 'minion: no ' ~ role ~ ' would get the new keys. Fix the target, '
                           ~ 'or, when the minions you retire were the last ' ~ role ~ 's, '
                           ~ 'say so: "last": true') %}
{%-   endif %}
{%- endfor %}
{%- set staying = [] %}
{%- for role in ['controller', 'compute'] if nodes[role] %}
{%-   do staying.append('( ' ~ nodes[role] ~ ' )') %}
{%- endfor %}
{%- do nodes.update({'all': staying | join(' or ')}) %}

{%- if problems %}
ceph_openstack-retire:
  test.fail_without_changes:
    - name: {{ (problems | join('; ') ~ '; nothing changed') | json }}
    - comment: {{ (problems | join('; ') ~ '; nothing changed') | json }}
{%- else %}
{%-   set answering = [] %}
{%-   for minion, answer in (salt['saltutil.cmd'](
                               minions | join(','), 'test.ping', tgt_type='list',
                               timeout=waits.timeout,
                               gather_job_timeout=waits.gather_job_timeout) or {}) | dictsort %}
{%-     if answer is mapping and answer.get('ret') is sameas true %}
{%-       do answering.append(minion) %}
{%-     endif %}
{%-   endfor %}
{%-   set offline = minions | reject('in', answering) | list %}
{#-   What each held, by cluster; everything a controller or compute reads where that
      cannot be asked (no answer, or modules too old to answer). #}
{%-   set held = {} %}
{%-   if answering %}
{%-     set answers = salt['saltutil.cmd'](answering | join(','), 'ceph_openstack.held',
                                           tgt_type='list', timeout=waits.timeout,
                                           gather_job_timeout=waits.gather_job_timeout)
                      or {} %}
{%-   else %}
{%-     set answers = {} %}
{%-   endif %}
{%-   set unknown = offline + [] %}
{%-   for minion in answering %}
{%-     set found = (answers.get(minion) or {}).get('ret') if answers.get(minion) is mapping
                    else None %}
{%-     if found is mapping %}
{%-       for name, clients in found.items() if name in clusters %}
{%-         do held.update({name: (held.get(name, []) + clients) | unique | sort}) %}
{%-       endfor %}
{%-     else %}
{%-       do unknown.append(minion) %}
{%-     endif %}
{%-   endfor %}
{%-   if unknown %}
{%-     for name, on in clusters.items() %}
{%-       set read = [] %}
{%-       for client, spec in on.clients.items()
            if spec is mapping and spec.get('roles', []) | select('in', ['controller', 'compute'])
                                                          | list %}
{%-         do read.append(client) %}
{%-       endfor %}
{%-       if read %}
{%-         do held.update({name: (held.get(name, []) + read) | unique | sort}) %}
{%-       endif %}
{%-     endfor %}
{%-   endif %}
{%-   set pass_on = {'ceph_openstack_retire': request} %}
{{ preflight_steps('ceph_openstack-retire') }}
{%-   if master_ready %}
{%-     set after = namespace(module=validate, id='ceph_openstack-retire-validate') %}
{%-     if answering %}

ceph_openstack-retire-nodes-sync:
  ceph_openstack_rollout.function:
    - name: saltutil.sync_all
    - tgt: {{ answering | join(',') | json }}
    - tgt_type: list
    - timeout: {{ waits.timeout }}
    - gather_job_timeout: {{ waits.gather_job_timeout }}
    - kwarg:
        refresh: true
    - require:
      - {{ after.module }}: {{ after.id }}

ceph_openstack-retire-ready:
  ceph_openstack_rollout.state:
    - tgt: {{ answering | join(',') | json }}
    - tgt_type: list
    - sls: ceph_openstack.retire.ready
    - pillar: {{ pass_on | json }}
    - timeout: {{ waits.timeout }}
    - gather_job_timeout: {{ waits.gather_job_timeout }}
    - require:
      - ceph_openstack_rollout: ceph_openstack-retire-nodes-sync
{%-       set after.module, after.id = 'ceph_openstack_rollout', 'ceph_openstack-retire-ready' %}
{%-     endif %}
{%-     for name, on in clusters.items() if held.get(name) %}
{%-       set prefix = 'ceph_openstack-retire-' ~ name %}
{%-       set acting = acting_mon(on.targets.mon, none, waits) | trim %}
{%-       if not acting %}

{{ prefix }}-mon:
  test.fail_without_changes:
    - name: {{ ('no mon minion of cluster ' ~ name ~ ' answered (its targets:mon is '
                ~ on.targets.mon ~ '): its keys were not rotated') | json }}
    - require:
      - {{ after.module }}: {{ after.id }}
{%-         set after.module, after.id = 'test', prefix ~ '-mon' %}
{%-       else %}
{{- rotation_steps(prefix, nodes, on.targets.mon, acting,
                   {'clients': held[name], 'cluster': name, 'mon': acting, 'min_age': 0},
                   [after.module, after.id], waits, co.rollout.compute_batch) }}
{%-         set after.module, after.id = 'ceph_openstack_rollout', prefix ~ '-restart' %}
{%-       endif %}
{%-     endfor %}
{%-     if answering %}

ceph_openstack-retire-node:
  ceph_openstack_rollout.state:
    - tgt: {{ answering | join(',') | json }}
    - tgt_type: list
    - sls: ceph_openstack.retire.node
    - pillar: {{ pass_on | json }}
    - timeout: {{ waits.timeout }}
    - gather_job_timeout: {{ waits.gather_job_timeout }}
    - require:
      - {{ after.module }}: {{ after.id }}
{%-       set after.module, after.id = 'ceph_openstack_rollout', 'ceph_openstack-retire-node' %}
{%-     endif %}
{%-     if offline %}
{%-       set said = (offline | join(', ')) ~ ' did not answer in '
                     ~ (waits.timeout + waits.gather_job_timeout) ~ ' s: retired from the '
                     ~ 'cluster side (every key a controller or compute reads rotated); '
                     ~ 'their disks keep keyrings and secrets that no longer log in' %}

ceph_openstack-retire-offline:
  test.succeed_without_changes:
    - name: {{ said | json }}
    - comment: {{ said | json }}
    - require:
      - {{ after.module }}: {{ after.id }}
{%-     endif %}
{%-   endif %}
{%- endif %}
