{#- A node joins on its own: salt-run state.orchestrate orch.ceph_openstack_join
        pillar='{"ceph_openstack_join": {"minion": "cmp7"}}'
    (what reactor/ceph_openstack_join.sls runs when a minion starts; README "A node joins
    on its own").

    A controller or compute that ceph_openstack:targets name and that cannot read all the
    keys its roles need (ceph_openstack.missing_keys: with minion-ID targets, the mons
    published before it was added) gets them republished: the mons apply their part, one
    after the other, which publishes every key whose access rule changed; then its
    highstate runs, queued behind one already running (a startup highstate). A minion the
    targets do not name, or one that reads its keys, gets nothing: its own highstate does
    the rest. The mons and the node are synced first (saltutil.sync_all). #}
{%- from "ceph_openstack/map.jinja" import co, mon_target with context %}
{%- set t = co.targets %}
{%- set minion = (pillar.get('ceph_openstack_join') or {}).get('minion') | string %}
{%- set clients = '( ' ~ t.controller ~ ' ) or ( ' ~ t.compute ~ ' )' %}
{#- Each step waits for slow nodes as the rollout's do (orch/preflight.jinja), run by the
    master's ceph_openstack_rollout (salt-run saltutil.sync_all once). #}
{%- set waits = {'timeout': [co.rollout.timeout | int, 1] | max,
                 'gather_job_timeout': [co.rollout.gather_job_timeout | int, 1] | max} %}
{%- set named = {} %}
{%- if minion | regex_match('^([A-Za-z0-9_.-]+)$') %}
{%-   do named.update(salt['saltutil.cmd']('( ' ~ clients ~ ' ) and L@' ~ minion, 'test.ping',
                                           tgt_type='compound', timeout=waits.timeout,
                                           gather_job_timeout=waits.gather_job_timeout)
                      or {}) %}
{%- endif %}
{%- set answer = {} %}
{%- if minion in named %}
{%-   do answer.update((salt['saltutil.cmd'](minion, 'ceph_openstack.missing_keys',
                                             tgt_type='list', timeout=waits.timeout,
                                             gather_job_timeout=waits.gather_job_timeout)
                        or {}).get(minion) or {}) %}
{%- endif %}
{#- A minion without the formula's modules yet (not synced) answers with an error, not a
    list: it is treated as missing every key. #}
{%- set missing = answer.get('ret') if answer.get('ret') is sequence
                  and answer.get('ret') is not string else None %}

{%- if minion not in named %}
{%-   set said = minion ~ ' is not a controller or compute of ceph_openstack:targets: '
                 ~ 'nothing to do' %}
ceph_openstack_join:
  test.succeed_without_changes:
    - name: {{ said | json }}
    - comment: {{ said | json }}
{%- elif missing == [] %}
{%-   set said = minion ~ ' reads every key it needs: nothing to do' %}
ceph_openstack_join:
  test.succeed_without_changes:
    - name: {{ said | json }}
    - comment: {{ said | json }}
{%- else %}
{#- On the file_roots route a new minion has no synced modules yet (nor, on a fresh fleet,
    the mons): sync both first (on the package route there is nothing to copy). #}
ceph_openstack_join-sync:
  ceph_openstack_rollout.function:
    - name: saltutil.sync_all
    - tgt: {{ ('( ' ~ mon_target ~ ' ) or L@' ~ minion) | json }}
    - tgt_type: compound
    - timeout: {{ waits.timeout }}
    - gather_job_timeout: {{ waits.gather_job_timeout }}
    - kwarg:
        refresh: true

ceph_openstack_join-mon:
  ceph_openstack_rollout.state:
    - name: {{ ('publish the keys ' ~ minion ~ ' cannot read: '
                ~ (missing | join(', ') if missing else 'all')) | json }}
    - tgt: {{ mon_target | json }}
    - tgt_type: compound
    - sls: ceph_openstack
    - batch: 1
    - queue: True
    - timeout: {{ waits.timeout }}
    - gather_job_timeout: {{ waits.gather_job_timeout }}
    - require:
      - ceph_openstack_rollout: ceph_openstack_join-sync

ceph_openstack_join-highstate:
  ceph_openstack_rollout.state:
    - tgt: {{ minion | json }}
    - highstate: True
    - queue: True
    - timeout: {{ waits.timeout }}
    - gather_job_timeout: {{ waits.gather_job_timeout }}
    - require:
      - ceph_openstack_rollout: ceph_openstack_join-mon
{%- endif %}
