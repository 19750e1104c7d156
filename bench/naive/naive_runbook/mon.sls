{#- Runbook, on the Ceph admin node:
      ceph osd pool create volumes 32        (for each pool)
      rbd pool init volumes
      ceph auth get-or-create client.glance mon '...' osd '...' mgr '...'   (for each user) #}
{%- from "naive_runbook/vars.jinja" import nr, ceph, rbd with context %}
{%- for pool, pg_num in nr.pools.items() %}
naive-pool-{{ pool }}:
  cmd.run:
    - name: {{ ceph }} osd pool create {{ pool }} {{ pg_num }}
    - unless: {{ ceph }} osd pool ls | grep -qx {{ pool }}

naive-pool-init-{{ pool }}:
  cmd.run:
    - name: {{ rbd }} pool init {{ pool }}
    - onchanges:
      - cmd: naive-pool-{{ pool }}
{%- endfor %}

{%- for client, caps in nr.clients.items() %}
naive-auth-{{ client }}:
  cmd.run:
    - name: {{ ceph }} auth get-or-create client.{{ client }} {{ caps }}
    - unless: {{ ceph }} auth get client.{{ client }} >/dev/null
{%- endfor %}
