{#- Ordered rollout: salt-run state.orchestrate orch.ceph_openstack
    sync -> validate -> mon (pools, users, published keys) -> controllers -> computes in
    batches -> raw images into Glance (when pillar lists any; one controller at a time)
    -> verify on every node (after a run that changed something; rollout:verify: always
    for every run). Each step requires the one before, so the run stops at the first
    failure; every step converges, so a re-run is safe.

    Before any step, one read-only job asks every node (ceph_openstack_rollout.preflight)
    whether its synced modules are the formula's (a hash per file, against the master's
    fileserver) and whether its pillar, compiled fresh, is valid. Only nodes whose modules
    differ are synced, and only those and nodes with pillar problems run the validate
    state; a node that does not answer counts as differing, so the sync step fails on
    it, naming it, before anything changed. #}
{%- from "ceph_openstack/map.jinja" import co with context %}
{%- set t = co.targets %}
{%- set all = '( ' ~ t.mon ~ ' ) or ( ' ~ t.controller ~ ' ) or ( ' ~ t.compute ~ ' )' %}
{%- set clients = '( ' ~ t.controller ~ ' ) or ( ' ~ t.compute ~ ' )' %}

{%- set files = {} %}
{%- set hash_type = [salt['config.get']('hash_type', 'sha256')] %}
{%- for top in ['_modules', '_states', '_utils'] %}
{%-   for path in salt['cp.list_master'](prefix=top ~ '/') if path.endswith('.py') %}
{%-     set found = salt['cp.hash_file']('salt://' ~ path) or {} %}
{%-     do files.update({path: found.get('hsum')}) %}
{%-     do hash_type.append(found.get('hash_type') or hash_type[-1]) %}
{%-   endfor %}
{%- endfor %}
{%- set preflight = salt['saltutil.cmd'](all, 'ceph_openstack_rollout.preflight',
                                         kwarg={'files': files, 'hash_type': hash_type[-1]},
                                         tgt_type='compound', expect_minions=True) or {} %}
{%- set stale, invalid, current = [], [], [] %}
{%- for minion, answer in preflight | dictsort %}
{%-   set found = answer.get('ret') if answer is mapping else None %}
{%-   if found is mapping and found.get('stale') == [] %}
{%-     do current.append(minion) %}
{%-     if found.get('problems') %}
{%-       do invalid.append(minion) %}
{%-     endif %}
{%-   else %}
{%-     do stale.append(minion) %}
{%-   endif %}
{%- endfor %}
{%- set recheck = (stale + invalid) | unique | sort %}
{%- set sync = 'salt' if stale else 'test' %}
{%- set validate = 'salt' if recheck else 'test' %}

ceph_openstack-sync:
{%- if stale %}
  salt.function:
    - name: saltutil.sync_all
    - tgt: {{ stale | join(',') | json }}
    - tgt_type: list
    - expect_minions: True
    - kwarg:
        refresh: true
{%- else %}
  test.succeed_without_changes:
    - name: {{ ('modules current on ' ~ current | join(', ')) | json }}
{%- endif %}

ceph_openstack-validate:
{%- if recheck %}
  salt.state:
    - tgt: {{ recheck | join(',') | json }}
    - tgt_type: list
    - sls: ceph_openstack.validate
    - require:
      - {{ sync }}: ceph_openstack-sync
{%- else %}
  test.succeed_without_changes:
    - name: {{ ('pillar valid on ' ~ current | join(', ')) | json }}
    - require:
      - {{ sync }}: ceph_openstack-sync
{%- endif %}

ceph_openstack-mon:
  salt.state:
    - tgt: {{ t.mon | json }}
    - tgt_type: compound
    - sls: ceph_openstack
    - require:
      - {{ validate }}: ceph_openstack-validate

ceph_openstack-controllers:
  salt.state:
    - tgt: {{ t.controller | json }}
    - tgt_type: compound
    - sls: ceph_openstack
    - require:
      - salt: ceph_openstack-mon

ceph_openstack-computes:
  salt.state:
    - tgt: {{ t.compute | json }}
    - tgt_type: compound
    - sls: ceph_openstack
    - batch: {{ co.rollout.compute_batch }}
    - require:
      - salt: ceph_openstack-controllers

{%- if co.images.upload %}

ceph_openstack-images:
  salt.state:
    - tgt: {{ t.get('images', t.controller) | json }}
    - tgt_type: compound
    - sls: ceph_openstack.images
    - batch: 1
    - require:
      - salt: ceph_openstack-controllers
{%- endif %}

ceph_openstack-verify:
  salt.state:
    - tgt: {{ clients | json }}
    - tgt_type: compound
    - sls: ceph_openstack.verify
    - require:
      - salt: ceph_openstack-computes
{%- if co.images.upload %}
      - salt: ceph_openstack-images
{%- endif %}
{%- if co.rollout.get('verify', 'changed') != 'always' %}
    - onchanges:
      - {{ sync }}: ceph_openstack-sync
      - salt: ceph_openstack-mon
      - salt: ceph_openstack-controllers
      - salt: ceph_openstack-computes
{%-   if co.images.upload %}
      - salt: ceph_openstack-images
{%-   endif %}
{%- endif %}
