{#- Runbook: "add the Ceph and OpenStack hosts to /etc/hosts on every node". #}
{%- from "naive_runbook/vars.jinja" import root with context %}
{%- for host, ip in pillar['naive_runbook'].hosts.items() %}
naive-hosts-{{ host }}:
  cmd.run:
    - name: echo '{{ ip }} {{ host }}' >> {{ root }}/etc/hosts
    - unless: grep -q ' {{ host }}$' {{ root }}/etc/hosts
{%- endfor %}
