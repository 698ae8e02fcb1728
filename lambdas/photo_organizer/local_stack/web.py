"""The local web app: one page that signs in, uploads through presigned POSTs, searches, and shows the library,
the people in it and what analysis found in each photo."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Photo Organizer</title>
<link rel="stylesheet" href="/app.css"></head><body>
<header><h1>Photo Organizer <span class="muted local">local</span></h1>
 <input id="q" type="search" placeholder="Search: beach with Ana in Lisbon 2023, dogs last summer, receipts..." hidden>
 <span id="who"></span></header>
<main>
 <form id="login" hidden><p>Sign in</p>
  <input id="u" placeholder="username" autocomplete="username"><br>
  <input id="p" type="password" placeholder="password" autocomplete="current-password"><br>
  <button>Sign in</button> <span id="err" class="muted"></span></form>
 <section id="library" hidden>
  <div id="drop">Drop photos here or <input id="pick" type="file" multiple accept="image/jpeg,image/png,image/webp,image/heic,image/heif"></div>
  <div id="people"></div><div id="chips"></div>
  <p id="status" class="muted"></p><div id="grid"></div>
  <p class="muted">Local analysis is basic next to the cloud: ImageNet labels, dlib faces, OCR where a quick check finds printed lines.</p>
 </section>
 <aside id="detail" hidden></aside>
</main>
<script src="/app.js" defer></script></body></html>
"""

STYLE = """
 body{font-family:system-ui,sans-serif;margin:0;background:#f6f6f4;color:#222}
 header{display:flex;gap:1rem;align-items:center;padding:.6rem 1.2rem;background:#20313b;color:#fff}
 header h1{font-size:1.1rem;margin:0} main{padding:1rem 1.2rem}
 #q{flex:1;max-width:520px;font:inherit;padding:.4rem .6rem;border-radius:4px;border:0}
 #grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:.8rem}
 figure{margin:0;background:#fff;border-radius:6px;overflow:hidden;box-shadow:0 1px 3px #0002;cursor:pointer}
 figure img{width:100%;height:160px;object-fit:cover;object-position:center 30%;display:block;background:#ddd}
 figcaption{font-size:.78rem;padding:.4rem .5rem;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
 .why{color:#2b6a8a;font-size:.72rem}
 #drop{border:2px dashed #8aa;padding:.6rem;border-radius:6px;margin-bottom:.8rem;text-align:center}
 #login{max-width:320px} input,button{font:inherit;padding:.35rem .5rem;margin:.2rem 0}
 .muted{color:#666;font-size:.85rem} .chip{display:inline-block;background:#dde8ee;border-radius:12px;padding:.1rem .6rem;margin:.15rem;font-size:.8rem}
 .person{background:#fff;border:1px solid #ccd;border-radius:14px;padding:.15rem .7rem;margin:.15rem;cursor:pointer;font-size:.85rem}
 #detail{position:fixed;right:0;top:0;bottom:0;width:min(420px,100%);background:#fff;box-shadow:-2px 0 8px #0003;padding:1rem;overflow:auto}
 #detail img{width:100%}
 .local{color:#9bb}
"""

SCRIPT = """
const types={jpg:'image/jpeg',jpeg:'image/jpeg',png:'image/png',webp:'image/webp',heic:'image/heic',heif:'image/heif'};
// Signed in only through the form below: never from the URL (a link must not sign anyone into another library).
let token=sessionStorage.getItem('token');
const $=id=>document.getElementById(id);
const api=(path,opt={})=>fetch(path,{...opt,headers:{...(opt.headers||{}),Authorization:'Bearer '+token}});
const text=(tag,value,cls)=>{const e=document.createElement(tag);e.textContent=value;if(cls)e.className=cls;return e};
function tile(p,why){
  const f=document.createElement('figure');const i=document.createElement('img');
  i.src=p.thumbnail_url;i.alt=p.filename;i.loading='lazy';f.append(i);
  f.append(text('figcaption',(p.taken_at||p.uploaded_at).slice(0,10)+' \\u00b7 '+p.filename));
  if(why)f.append(text('figcaption',why,'why'));
  f.onclick=()=>show(p.photo_id);return f}
async function load(){
  const grid=$('grid');grid.textContent='';$('chips').textContent='';let cursor=null,count=0;
  do{const r=await api('/photos?limit=100'+(cursor?'&cursor='+encodeURIComponent(cursor):''));
     if(r.status===401){return signOut()} const page=await r.json();
     for(const p of page.items){count++;grid.append(tile(p))} cursor=page.next_cursor}while(cursor);
  $('status').textContent=count+' photos';loadPeople();
}
async function loadPeople(){
  const box=$('people');box.textContent='';const r=await api('/people');if(!r.ok)return;
  for(const person of await r.json()){
    const b=text('button',(person.name||'Unnamed')+' ('+person.photo_count+')','person');
    b.onclick=async()=>{const page=await (await api('/people/'+person.person_id+'/photos')).json();
      $('grid').textContent='';page.items.forEach(p=>$('grid').append(tile(p)));
      $('status').textContent=(person.name||'Unnamed person')+': '+page.items.length+' photos'};
    b.ondblclick=async()=>{const name=prompt('Name this person',person.name||'');if(name===null)return;
      await api('/people/'+person.person_id,{method:'PATCH',headers:{'Content-Type':'application/json'},body:JSON.stringify({name})});loadPeople()};
    box.append(b)}
}
async function search(q){
  if(!q.trim())return load();
  const r=await api('/search?limit=100&q='+encodeURIComponent(q));const res=await r.json();
  $('chips').textContent='';(res.chips||[]).forEach(c=>$('chips').append(text('span',c.kind+': '+c.display,'chip')));
  $('grid').textContent='';
  for(const h of res.items){const why=h.semantic_only?'by meaning':h.matched.map(m=>m.field+(m.terms.length?' '+m.terms.join(', '):'')).join('; ');
    $('grid').append(tile(h,why))}
  $('status').textContent=res.total+' found'+(res.semantic==='degraded'?' (meaning search is degraded)':'');
}
async function show(id){
  const p=await (await api('/photos/'+id)).json();const d=$('detail');d.textContent='';d.hidden=false;
  const close=text('button','Close');close.onclick=()=>{d.hidden=true};d.append(close);
  const img=document.createElement('img');img.src=p.urls&&p.urls.preview;d.append(img);
  const a=p.analysis;d.append(text('h3',(a&&a.caption)||p.filename));
  if(a){if(a.place)d.append(text('p',a.place));
    if(a.people.length)d.append(text('p','People: '+a.people.map(x=>x.name||'unnamed').join(', ')));
    if(a.tags.length)d.append(text('p','Tags: '+a.tags.join(', ')));
    if(a.text.length)d.append(text('p','Text: '+a.text.join(' / ')));
    d.append(text('p','Analysed '+(a.source==='local'?'locally (basic)':'by Rekognition'),'muted'))}
  else d.append(text('p','Not analysed yet','muted'));
}
async function upload(files){
  for(const file of files){
    const ext=file.name.split('.').pop().toLowerCase();const ct=file.type||types[ext]||'application/octet-stream';
    $('status').textContent='Uploading '+file.name;
    const r=await api('/uploads',{method:'POST',headers:{'Content-Type':'application/json'},body:JSON.stringify({filename:file.name,content_type:ct,size:file.size||1})});
    if(!r.ok){$('status').textContent=file.name+': '+(await r.text());continue}
    const t=await r.json();const form=new FormData();for(const[k,v]of Object.entries(t.fields))form.append(k,v);form.append('file',file);
    await fetch(t.url,{method:'POST',body:form});
  }
  setTimeout(load,1500);
}
function signOut(){sessionStorage.removeItem('token');token=null;showPage()}
function showPage(){$('login').hidden=!!token;$('library').hidden=!token;$('q').hidden=!token;
  if(!token)return;sessionStorage.setItem('token',token);const q=new URLSearchParams(location.search).get('q');
  if(q){$('q').value=q;search(q)}else load()}
$('login').onsubmit=async e=>{e.preventDefault();
  const r=await fetch('/auth/token',{method:'POST',body:JSON.stringify({username:$('u').value,password:$('p').value})});
  if(!r.ok){$('err').textContent='Wrong username or password';return} token=(await r.json()).id_token;showPage()};
let timer;$('q').oninput=e=>{clearTimeout(timer);timer=setTimeout(()=>search(e.target.value),250)};
$('pick').onchange=e=>upload(e.target.files);
const drop=$('drop');drop.ondragover=e=>e.preventDefault();drop.ondrop=e=>{e.preventDefault();upload(e.dataTransfer.files)};
showPage();
"""

# Served as files so the page's Content-Security-Policy can forbid inline script and style.
ASSETS = {"/app.js": (SCRIPT, "text/javascript"), "/app.css": (STYLE, "text/css")}
