#include "page.hpp"

namespace asdcap::report {

// System fonts only (no network); one column on a phone, grids widen on a laptop.
std::string page_css() {
  return R"CSS(
:root{--warm:#e8590c;--warm-bg:#fff4e6;--cool:#1c7ed6;--cool-bg:#e7f5ff;--ink:#212529;--muted:#6c757d;
--line:#dee2e6;--bg:#f8f9fa;--card:#fff;--accent:#364fc7}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","DejaVu Sans",sans-serif;
color:var(--ink);background:var(--bg)}
header.top{background:#1b1f3b;color:#fff;padding:22px 20px 18px}
header.top .wrap{max-width:1240px;margin:0 auto}
header.top h1{margin:0;font-size:24px;font-weight:650;letter-spacing:-.01em}
header.top p{margin:4px 0 0;color:#c5cae9;font-size:13px;word-break:break-all}
main{max-width:1240px;margin:0 auto;padding:0 16px 40px}
h2{font-size:20px;margin:34px 0 6px;font-weight:650}
h3{font-size:16px;margin:22px 0 8px;font-weight:650}
p.lead{margin:0 0 14px;color:var(--muted);max-width:80ch}
nav.toc{display:flex;flex-wrap:wrap;gap:6px 16px;margin:14px 0 0;font-size:14px}
nav.toc a{color:var(--accent);text-decoration:none}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;margin-top:18px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 14px}
.card .k{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.05em}
.card .v{font-size:26px;font-weight:650;line-height:1.2;font-variant-numeric:tabular-nums}
.card .d{font-size:13px;color:var(--muted)}
.card.warm{border-top:4px solid var(--warm)} .card.cool{border-top:4px solid var(--cool)}
.card.flag .v{color:var(--warm)}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;background:var(--card);border:1px solid var(--line);border-radius:10px}
table{border-collapse:collapse;width:100%;font-size:14px;font-variant-numeric:tabular-nums}
th,td{padding:6px 10px;text-align:right;white-space:nowrap;border-bottom:1px solid #f1f3f5}
th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);background:#f8f9fa;position:sticky;top:0}
td.l,th.l{text-align:left}
tr.row-average td{background:#f1f3f5;font-weight:600}
tr.row-overall td{background:#e9ecef;font-weight:700;border-top:2px solid #ced4da}
td.auc{min-width:120px}
.bar{display:inline-block;height:8px;border-radius:4px;background:#868e96;vertical-align:middle;margin-left:8px}
.bar.hi{background:#2b8a3e} .bar.lo{background:#c92a2a}
.grid2{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,560px),1fr));gap:14px}
.idcard{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:10px 12px}
.idcard h4{margin:0 0 4px;font-size:15px}
.idcard h4 span{font-weight:400;color:var(--muted);font-size:13px}
.charts{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:8px;align-items:start}
@media (max-width:520px){.charts{grid-template-columns:1fr} .charts svg.roc{max-width:300px;margin:0 auto}}
svg.chart{width:100%;height:auto;display:block;font-family:inherit}
svg text{font-size:10px;fill:#495057}
svg text.label{font-size:10.5px;fill:#343a40}
svg text.rowlabel{font-size:11px;fill:#212529}
svg text.muted{fill:#868e96;font-style:italic}
svg text.strong{fill:#212529;font-weight:600}
svg .grid{stroke:#f1f3f5;stroke-width:1}
svg .axis{stroke:#868e96;stroke-width:1}
svg .threshold{stroke:#212529;stroke-width:1.5;stroke-dasharray:4 3}
svg .chance{stroke:#adb5bd;stroke-dasharray:3 3}
svg .pauc-band{fill:#fff4e6}
svg .roc-line{fill:none;stroke:#364fc7;stroke-width:2}
svg .op-point{fill:#fff;stroke:#212529;stroke-width:2}
svg .diff{stroke:#ffa94d;stroke-width:2}
svg .frame{fill:none;stroke:#ced4da}
svg .event{fill:#e8590c}
figure.clip{margin:18px 0 26px;background:var(--card);border:1px solid var(--line);border-radius:12px;padding:14px}
figure.clip>header{display:flex;flex-wrap:wrap;align-items:baseline;gap:4px 14px;margin-bottom:10px}
figure.clip>header h3{margin:0;font-size:16px;word-break:break-all}
.pill{display:inline-block;font-size:12px;border-radius:999px;padding:1px 9px;background:#f1f3f5;color:#495057}
.pill.warm{background:var(--warm-bg);color:#d9480f} .pill.cool{background:var(--cool-bg);color:#1864ab}
.panels{display:grid;grid-template-columns:repeat(auto-fit,minmax(190px,1fr));gap:10px}
.panel{border-radius:8px;padding:8px;border:1px solid var(--line);border-top:4px solid var(--cool);min-width:0}
.panel.anomalous{border-top-color:var(--warm);background:#fffaf5}
.panel .who{font-size:12px;font-weight:600;margin-bottom:4px;display:flex;justify-content:space-between;gap:6px}
.panel.anomalous .who{color:#d9480f} .panel .who{color:#1864ab}
.panel .who span{font-weight:400;color:var(--muted)}
.spec{position:relative;width:100%}
.spec img,.spec .sgimg{position:absolute;display:block}
.spec .sgimg{background-size:100% 100%;background-repeat:no-repeat}
.spec svg{position:absolute;left:0;top:0;width:100%;height:100%;font-family:inherit;overflow:visible}
.spec.missing,.nospec{aspect-ratio:220/138;display:flex;align-items:center;justify-content:center;text-align:center;
padding:10px;background:repeating-linear-gradient(45deg,#f8f9fa,#f8f9fa 8px,#f1f3f5 8px,#f1f3f5 16px);color:var(--muted);font-size:13px;border-radius:4px}
.caption{margin:6px 0 4px;font-size:13.5px;line-height:1.4;border:1.5px solid #212529;border-radius:4px;padding:4px 7px;min-height:2.2em}
.caption.none{border-style:dashed;border-color:#adb5bd;color:var(--muted);font-style:italic}
.fname{font-size:11.5px;color:var(--muted);word-break:break-all;margin-top:2px}
audio{width:100%;height:32px;margin-top:4px}
.methods{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:10px;margin:12px 0}
.method{border-radius:8px;padding:8px 12px;background:#f8f9fa;border-left:4px solid #495057}
.method .name{font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);font-weight:600}
.method .name span{text-transform:none;letter-spacing:0;font-weight:400}
.method p{margin:3px 0 0;font-size:15px}
.method.error p{color:#c92a2a;font-size:13.5px}
.evidence{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,430px),1fr));gap:12px;margin-top:4px}
.evidence>div{max-width:680px}
.evidence h4{margin:0 0 2px;font-size:13px;color:var(--muted);font-weight:600}
.note{background:#fff9db;border:1px solid #ffe066;border-radius:8px;padding:8px 12px;font-size:14px;margin:10px 0}
.note.missing{background:#f8f9fa;border-color:#dee2e6;color:#495057}
p.absent{margin:8px 0 2px;font-size:13px;color:var(--muted)}
p.absent b{font-weight:600;color:#495057}
ul.problems{margin:6px 0;padding-left:20px;font-size:14px}
td.reason{white-space:normal;text-align:left;min-width:240px}
td.path{white-space:normal;word-break:break-all;text-align:left;font-size:13px}
footer{max-width:1240px;margin:0 auto;padding:14px 16px 30px;color:var(--muted);font-size:12px}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:13px;color:var(--muted);margin:4px 0 8px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.cmap{display:inline-block;width:90px;height:10px;border-radius:2px;vertical-align:-1px;margin:0 5px}
@media (max-width:600px){body{font-size:14px} header.top h1{font-size:20px} .card .v{font-size:22px}
 main{padding:0 10px 30px} figure.clip{padding:10px} .panels{grid-template-columns:repeat(2,minmax(0,1fr))}}
)CSS";
}

}  // namespace asdcap::report
