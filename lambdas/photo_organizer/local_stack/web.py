"""The local web app: one page that signs in, uploads through presigned POSTs and shows the library."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Photo Organizer</title>
<style>
 body{font-family:system-ui,sans-serif;margin:0;background:#f6f6f4;color:#222}
 header{display:flex;gap:1rem;align-items:center;padding:.8rem 1.2rem;background:#20313b;color:#fff}
 header h1{font-size:1.1rem;margin:0;flex:1} main{padding:1rem 1.2rem}
 #grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:.8rem}
 figure{margin:0;background:#fff;border-radius:6px;overflow:hidden;box-shadow:0 1px 3px #0002}
 figure img{width:100%;height:160px;object-fit:cover;object-position:center 30%;display:block;background:#ddd}
 figcaption{font-size:.78rem;padding:.4rem .5rem;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
 #drop{border:2px dashed #8aa;padding:1rem;border-radius:6px;margin-bottom:1rem;text-align:center}
 #login{max-width:320px} input,button{font:inherit;padding:.35rem .5rem;margin:.2rem 0}
 .muted{color:#666;font-size:.85rem}
</style></head><body>
<header><h1>Photo Organizer <span class="muted" style="color:#9bb">local</span></h1><span id="who"></span></header>
<main>
 <form id="login" hidden><p>Sign in</p>
  <input id="u" placeholder="username" autocomplete="username"><br>
  <input id="p" type="password" placeholder="password" autocomplete="current-password"><br>
  <button>Sign in</button> <span id="err" class="muted"></span></form>
 <section id="library" hidden>
  <div id="drop">Drop photos here or <input id="pick" type="file" multiple accept="image/jpeg,image/png,image/webp,image/heic,image/heif"></div>
  <p id="status" class="muted"></p><div id="grid"></div>
 </section>
</main>
<script>
const types={jpg:'image/jpeg',jpeg:'image/jpeg',png:'image/png',webp:'image/webp',heic:'image/heic',heif:'image/heif'};
let token=new URLSearchParams(location.hash.slice(1)).get('token')||sessionStorage.getItem('token');
if(location.hash){history.replaceState(null,'',location.pathname)}
const api=(path,opt={})=>fetch(path,{...opt,headers:{...(opt.headers||{}),Authorization:'Bearer '+token}});
async function load(){
  const grid=document.getElementById('grid');grid.textContent='';let cursor=null,count=0;
  do{const r=await api('/photos?limit=100'+(cursor?'&cursor='+encodeURIComponent(cursor):''));
     if(r.status===401){return signOut()} const page=await r.json();
     for(const p of page.items){count++;const f=document.createElement('figure');const i=document.createElement('img');
       i.src=p.thumbnail_url;i.alt=p.filename;i.loading='lazy';const c=document.createElement('figcaption');
       c.textContent=(p.taken_at||p.uploaded_at).slice(0,10)+' \\u00b7 '+p.filename;f.append(i,c);grid.append(f)}
     cursor=page.next_cursor}while(cursor);
  document.getElementById('status').textContent=count+' photos';
}
async function upload(files){
  for(const file of files){
    const ext=file.name.split('.').pop().toLowerCase();const ct=file.type||types[ext]||'application/octet-stream';
    document.getElementById('status').textContent='Uploading '+file.name;
    const r=await api('/uploads',{method:'POST',headers:{'Content-Type':'application/json'},body:JSON.stringify({filename:file.name,content_type:ct,size:file.size||1})});
    if(!r.ok){document.getElementById('status').textContent=file.name+': '+(await r.text());continue}
    const t=await r.json();const form=new FormData();for(const[k,v]of Object.entries(t.fields))form.append(k,v);form.append('file',file);
    await fetch(t.url,{method:'POST',body:form});
  }
  setTimeout(load,1500);
}
function signOut(){sessionStorage.removeItem('token');token=null;show()}
function show(){document.getElementById('login').hidden=!!token;document.getElementById('library').hidden=!token;if(token){sessionStorage.setItem('token',token);load()}}
document.getElementById('login').onsubmit=async e=>{e.preventDefault();
  const r=await fetch('/auth/token',{method:'POST',body:JSON.stringify({username:u.value,password:p.value})});
  if(!r.ok){err.textContent='Wrong username or password';return} token=(await r.json()).id_token;show()};
document.getElementById('pick').onchange=e=>upload(e.target.files);
const drop=document.getElementById('drop');drop.ondragover=e=>e.preventDefault();
drop.ondrop=e=>{e.preventDefault();upload(e.dataTransfer.files)};
show();
</script></body></html>
"""
