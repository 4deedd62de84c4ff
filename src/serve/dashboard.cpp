#include "serve/dashboard.hpp"

namespace asdcap::serve {

// A minimal page: the machines and their last scores, refreshed every 2 s from /v1/machines.
std::string dashboard_html() {
  return R"html(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>asdcap serve</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}.anomaly{color:#b00020;font-weight:600}</style>
</head><body><h1>asdcap serve</h1><table id="machines"><thead><tr><th>Machine</th><th>ID</th><th>References</th>
<th>Threshold</th><th>Last score</th><th>Last label</th><th>Events</th><th>Unacknowledged anomalies</th></tr></thead>
<tbody></tbody></table>
<script>
function cell(t,c){const td=document.createElement('td');td.textContent=t===null?'-':String(t);if(c)td.className=c;return td;}
async function refresh(){try{const r=await fetch('/v1/machines');const j=await r.json();const tb=document.querySelector('#machines tbody');tb.textContent='';
for(const m of j.machines){const tr=document.createElement('tr');
[m.type,m.id,m.n_references,m.threshold===null?null:m.threshold.toFixed(3),m.last_score===null?null:m.last_score.toFixed(3)].forEach(v=>tr.appendChild(cell(v)));
tr.appendChild(cell(m.last_label,m.last_label==='anomaly'?'anomaly':''));tr.appendChild(cell(m.n_events));tr.appendChild(cell(m.n_unacknowledged));tb.appendChild(tr);}}catch(e){}}
refresh();setInterval(refresh,2000);
</script></body></html>
)html";
}

}  // namespace asdcap::serve
