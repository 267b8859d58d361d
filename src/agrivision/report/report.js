// report.html: the map (Leaflet), the field table and the cards, from the JSON in
// #report-data (agrivision.report.page.page_data). No network unless data.tiles is set.
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('report-data').textContent);
  var T = D.table, C = D.colours, M = D.map;
  var MAX_ROWS = 300;  // rows in the DOM at once; sorting and filters see every field
  var col = {};
  T.columns.forEach(function (c, i) { col[c] = i; });
  var rowById = {};
  T.data.forEach(function (r) { rowById[String(r[col.field_id])] = r; });
  var idx = (T.columns.filter(function (c) { return /_mean$/.test(c) && c !== 'peer_z'; })[0]) || null;

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (ch) {
      return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[ch];
    });
  }
  function fmt(v, kind) {
    if (v === null || v === undefined || (typeof v === 'number' && isNaN(v))) return '';
    if (typeof v === 'boolean') return v ? 'yes' : '';
    if (kind === 'f') return Number(v).toFixed(3);
    return String(v);
  }
  function val(r, c) { return c in col ? r[col[c]] : null; }
  function num(v, digits) { return v === null || v === undefined ? '–' : Number(v).toFixed(digits); }

  // ------------------------------------------------------------------ colours
  function hexRgb(h) { return [1, 3, 5].map(function (i) { return parseInt(h.substr(i, 2), 16); }); }
  var RAMP = C.ramp.map(hexRgb), SHARE_RAMP = C.share_ramp.map(hexRgb);
  function ramp(f, stops) {  // as agrivision.report.palette.ramp_rgb
    stops = stops || RAMP;
    if (f === null || isNaN(f)) return '#9e9e9e';
    f = Math.min(1, Math.max(0, f)) * (stops.length - 1);
    var i = Math.min(Math.floor(f), stops.length - 2), w = f - i;
    return 'rgb(' + stops[i].map(function (c, k) { return Math.round(c * (1 - w) + stops[i + 1][k] * w); }).join(',') + ')';
  }
  var modes = {status: {label: 'status'}};
  T.columns.forEach(function (c) {
    if (/_mean$/.test(c)) modes[c] = {label: c, range: C.index_range};
  });
  if ('peer_z' in col) modes.peer_z = {label: 'peer_z (vs. same crop)', range: C.peer_z_range};
  var mode = 'status';
  function fieldColour(r) {
    if (mode === 'status') return C.status[val(r, 'status')] || '#9e9e9e';
    var v = val(r, mode), g = modes[mode].range;
    return v === null ? '#9e9e9e' : ramp((v - g[0]) / (g[1] - g[0]));
  }

  // ------------------------------------------------------------------ geometry
  function decode(layer, each) {  // see agrivision.report.webmap.vector_layer
    var xy = layer.xy;
    for (var f = 0; f < layer.part.length - 1; f++) {
      var polys = [];
      for (var p = layer.part[f]; p < layer.part[f + 1]; p++) {
        var rings = [];
        for (var q = layer.poly[p]; q < layer.poly[p + 1]; q++) {
          var ring = [], lat = 0, lon = 0;
          for (var k = layer.ring[q]; k < layer.ring[q + 1]; k++) {
            lat += xy[2 * k]; lon += xy[2 * k + 1];
            ring.push(L.latLng(lat * 1e-6, lon * 1e-6));
          }
          rings.push(ring);
        }
        polys.push(rings);
      }
      each(f, polys);
    }
  }

  // ------------------------------------------------------------------ map
  // No zoom animation: the field layer redraws at the new zoom instead of being scaled.
  var map = L.map('map', {maxZoom: M.max_zoom, zoomSnap: 0.5, zoomAnimation: false});
  if (D.tiles) L.tileLayer(D.tiles, {maxZoom: M.max_zoom, maxNativeZoom: 19}).addTo(map);
  var canvas = L.canvas({padding: 0.3});
  var index = L.imageOverlay(M.index.uri, M.index.bounds, {opacity: 0.85, className: 'pixelated'}).addTo(map);
  var classes = L.imageOverlay(M.classes.uri, M.classes.bounds, {opacity: 0.85, className: 'pixelated'});

  // The fields: one SVG path per field, each with data-field-id, drawn by this small layer.
  // Leaflet's own polygons cost three times the CPU for 20,000 fields (a full tile).
  var SVG_NS = 'http://www.w3.org/2000/svg';
  var FieldLayer = L.Layer.extend({
    initialize: function (layer) {
      this._svg = document.createElementNS(SVG_NS, 'svg');
      this._svg.setAttribute('class', 'fields');
      this._fields = [];  // {id, rings: [[x0, y0, x1, y1, ...] in Web Mercator pixels at zoom 0], bounds, path}
      var self = this, xy = layer.xy, pi = Math.PI;
      for (var f = 0; f < layer.part.length - 1; f++) {
        var rings = [], s = 90, w = 180, n = -90, e = -180;
        for (var p = layer.part[f]; p < layer.part[f + 1]; p++) {
          for (var q = layer.poly[p]; q < layer.poly[p + 1]; q++) {
            var ring = [], lat = 0, lon = 0;
            for (var k = layer.ring[q]; k < layer.ring[q + 1]; k++) {
              lat += xy[2 * k]; lon += xy[2 * k + 1];
              var la = lat * 1e-6, lo = lon * 1e-6, phi = la * pi / 180;
              s = Math.min(s, la); n = Math.max(n, la); w = Math.min(w, lo); e = Math.max(e, lo);
              ring.push((lo + 180) / 360 * 256, (0.5 - Math.log(Math.tan(pi / 4 + phi / 2)) / (2 * pi)) * 256);
            }
            rings.push(ring);
          }
        }
        var path = document.createElementNS(SVG_NS, 'path'), id = String(layer.props.field_id[f]);
        path.setAttribute('data-field-id', id);
        path.setAttribute('class', 'leaflet-interactive');
        this._svg.appendChild(path);
        self._fields.push({id: id, rings: rings, bounds: L.latLngBounds([s, w], [n, e]), path: path});
      }
    },
    onAdd: function (map) {  // a pane above the images and the zones: fields stay clickable
      (map.getPane('fields') || map.createPane('fields')).appendChild(this._svg);
      map.on('zoomend viewreset', this._draw, this);
      this._draw();
    },
    onRemove: function (map) {
      this._svg.remove();
      map.off('zoomend viewreset', this._draw, this);
    },
    _draw: function () {  // layer-pixel coordinates: the pane moves them when the map pans
      var f = Math.pow(2, this._map.getZoom()), o = this._map.getPixelOrigin();
      this._fields.forEach(function (field) {
        var d = [];
        field.rings.forEach(function (r) {
          for (var i = 0; i < r.length; i += 2) {
            d.push((i ? 'L' : 'M') + (r[i] * f - o.x).toFixed(1) + ' ' + (r[i + 1] * f - o.y).toFixed(1));
          }
          d.push('z');
        });
        field.path.setAttribute('d', d.join(''));
      });
    },
    getBounds: function () {
      var b = L.latLngBounds([]);
      this._fields.forEach(function (field) { b.extend(field.bounds); });
      return b;
    }
  });
  var fields = new FieldLayer(M.fields).addTo(map), shapeById = {};
  fields._fields.forEach(function (field) { shapeById[field.id] = field; });
  // one tooltip and one click handler for all fields
  var tip = L.tooltip({direction: 'top', offset: [0, -8]}), pressed = null;
  function fieldOf(e) { return e.target.dataset ? e.target.dataset.fieldId : undefined; }
  L.DomEvent.on(fields._svg, 'mousemove', function (e) {
    var id = fieldOf(e);
    if (id === undefined) return;
    tip.setLatLng(map.mouseEventToLatLng(e)).setContent(tooltip(rowById[id]));
    if (!map.hasLayer(tip)) tip.addTo(map);
  });
  L.DomEvent.on(fields._svg, 'mouseout', function () { map.removeLayer(tip); });
  L.DomEvent.on(fields._svg, 'mousedown', function (e) { pressed = [e.clientX, e.clientY]; });
  L.DomEvent.on(fields._svg, 'click', function (e) {  // the card, and a link to it in the address bar
    var id = fieldOf(e);
    if (id === undefined || (pressed && Math.abs(e.clientX - pressed[0]) + Math.abs(e.clientY - pressed[1]) > 4)) return;
    select(id);
    location.hash = 'field-' + id;
  });
  // A model's cells and patches answer hovering: on a canvas in a pane above the fields.
  map.createPane('model').style.zIndex = 460;
  var modelCanvas = L.canvas({padding: 0.3, pane: 'model'});
  function lazyLayer(layer, style, tip) {  // dense layers: drawn on a canvas, built when first shown
    if (layer.uri) return L.imageOverlay(layer.uri, layer.bounds, {opacity: 0.85, className: 'pixelated'});
    var group = L.layerGroup(), built = false;
    group.on('add', function () {
      if (built) return;
      built = true;
      decode(layer, function (f, polys) {
        var shape = L.polygon(polys, Object.assign({renderer: tip ? modelCanvas : canvas,
          interactive: !!tip, weight: 0.5, fillOpacity: 0.6}, style(f))).addTo(group);
        if (tip) shape.bindTooltip(function () { return tip(f); }, {sticky: true});
      });
    });
    return group;
  }
  var zones = lazyLayer(M.zones, function (f) {
    // a zone's colour is its rank in its field (palette.zone_shade): zone 2 of 2 = 6 of 6
    var z = M.zones.props.zone[f], n = M.zones.props.zones_n[f];
    var rank = n > 1 ? Math.min(Math.max((z - 1) / (n - 1), 0), 1) : 0.5;
    var c = M.zone_colours[String(1 + Math.floor(rank * M.zone_shades + 0.5))] || '#9e9e9e';
    return {color: c, fillColor: c};
  });
  var problems = lazyLayer(M.problems, function (f) {
    var c = C.classes[String(M.problems.props['class'][f])] || '#000';
    return {color: '#000', fillColor: c, fillOpacity: 0.8};
  });
  var overlays = {'fields': fields};
  overlays['index: ' + esc(M.index.name)] = index;
  overlays['health classes'] = classes;
  function count(layer) {  // too many polygons come as an image (webmap.dense_layer)
    return ' · ' + layer.count.toLocaleString('en') + (layer.uri ? ', as an image' : '');
  }
  overlays['zones (1 = lowest index, red)' + count(M.zones)] = zones;
  overlays['problem areas (stressed, anomaly)' + count(M.problems)] = problems;
  modelOverlays(overlays);
  L.control.layers(null, overlays, {collapsed: false}).addTo(map);
  L.control.scale({imperial: false}).addTo(map);
  if (fields._fields.length) map.fitBounds(fields.getBounds());
  else map.fitBounds(M.index.bounds);

  var legend = L.control({position: 'bottomright'});
  legend.onAdd = function () { this._div = L.DomUtil.create('div', 'legend'); return this._div; };
  legend.addTo(map);
  function drawLegend() {
    var h = '<b>' + esc(modes[mode].label) + '</b><br>';
    if (mode === 'status') {
      Object.keys(C.status).forEach(function (s) {
        h += '<i style="background:' + C.status[s] + '"></i>' + esc(s) + '<br>';
      });
    } else {
      var g = modes[mode].range;
      h += '<div class="bar" style="background:linear-gradient(to right,' + C.ramp.join(',') +
        ')"></div><div class="ends"><span>' + g[0] + '</span><span>' + g[1] + '</span></div>';
    }
    legend._div.innerHTML = h;
  }

  // ------------------------------------------------------------------ a model's layers
  // cells: the share of the patch classes (e.g. weed) per grid cell; patches: their polygons
  function modelOverlays(overlays) {
    var cells = M.cells, patches = M.patches, shown = {}, box = L.control({position: 'bottomleft'});
    if (!cells && !patches) return;
    var what = M.model_label;
    box.onAdd = function () { this._div = L.DomUtil.create('div', 'legend model-legend'); return this._div; };
    box.addTo(map);
    function drawBox() {
      var h = '';
      if (shown.cells) {
        h += '<b>' + esc(what) + ' share per grid cell (%)</b><div class="bar" style="background:linear-gradient(to right,' +
          C.share_ramp.join(',') + ')"></div><div class="ends"><span>0</span><span>' + cells.top + '</span></div>' +
          '<i style="background:#9e9e9e"></i>no data<br>';
      }
      if (shown.patches) h += '<i style="background:' + C.patch + '"></i>' + esc(what) + ' patches';
      box._div.innerHTML = h;
      box._div.hidden = !h;
    }
    function track(name, layer) {
      layer.on('add', function () { shown[name] = true; drawBox(); });
      layer.on('remove', function () { shown[name] = false; drawBox(); });
      return layer;
    }
    if (cells) {
      var share = function (f) {
        var total = 0;
        for (var i = 0; i < cells.shares.length; i++) {
          var v = cells.props[cells.shares[i]][f];
          if (v === null) return null;
          total += v;
        }
        return total;
      };
      var cellLayer = track('cells', lazyLayer(cells, function (f) {
        var v = share(f), c = ramp(v === null ? null : v / cells.top, SHARE_RAMP);
        return {color: '#555', fillColor: c, fillOpacity: 0.75};
      }, function (f) {
        var lines = ['<b>cell ' + esc(cells.props.cell_id[f]) + '</b> · field ' + esc(cells.props.field_id[f])];
        Object.keys(cells.props).filter(function (c) { return /_pct$/.test(c); }).forEach(function (c) {
          var line = esc(c.replace(/_pct$/, '')) + ': ' + num(cells.props[c][f], 1) + ' %';
          lines.push(cells.shares.indexOf(c) >= 0 ? '<b>' + line + '</b>' : line);
        });
        return lines.join('<br>');
      }));
      overlays[esc(what) + ' share per grid cell' + count(cells)] = cellLayer.addTo(map);
    }
    if (patches) {
      var patchLayer = track('patches', lazyLayer(patches, function () {
        return {color: '#2d004b', fillColor: C.patch, fillOpacity: 0.8};
      }, function (f) {
        var ha = patches.props.area_ha[f];
        return '<b>' + esc(patches.props.class_name[f]) + ' patch</b> · field ' + esc(patches.props.field_id[f]) +
          '<br>area: ' + (ha < 0.1 ? num(ha * 1e4, 1) + ' m²' : num(ha, 2) + ' ha');
      }));
      overlays[esc(what) + ' patches' + count(patches)] = patchLayer;
    }
    drawBox();
  }

  function tooltip(r) {
    var lines = ['<b>field ' + esc(val(r, 'field_id')) + '</b>'];
    if ('crop' in col) lines.push('crop: ' + esc(fmt(val(r, 'crop'))));
    lines.push('area: ' + num(val(r, 'area_ha'), 2) + ' ha');
    if (idx) lines.push(esc(idx) + ': ' + num(val(r, idx), 3));
    lines.push('status: ' + esc(val(r, 'status')));
    return lines.join('<br>');
  }

  // ------------------------------------------------------------------ controls
  var colourBy = document.getElementById('colour-by');
  Object.keys(modes).forEach(function (m) { colourBy.add(new Option(modes[m].label, m)); });
  colourBy.addEventListener('change', function () { mode = colourBy.value; restyle(); });
  function distinct(c) {
    var seen = {};
    T.data.forEach(function (r) { var v = val(r, c); if (v !== null) seen[v] = 1; });
    return Object.keys(seen).sort();
  }
  var statusFilter = document.getElementById('status-filter'), cropFilter = document.getElementById('crop-filter');
  distinct('status').forEach(function (s) { statusFilter.add(new Option(s, s)); });
  if ('crop' in col) {
    document.getElementById('crop-filter-label').hidden = false;
    distinct('crop').forEach(function (s) { cropFilter.add(new Option(s, s)); });
  }
  statusFilter.addEventListener('change', function () { drawTable(); restyle(); });
  cropFilter.addEventListener('change', function () { drawTable(); restyle(); });
  function shown(r) {
    return (!statusFilter.value || val(r, 'status') === statusFilter.value) &&
      (!cropFilter.value || String(val(r, 'crop')) === cropFilter.value);
  }
  var selected = null;
  function style(field) {
    var r = rowById[field.id], on = shown(r), sel = field.id === selected, p = field.path;
    p.setAttribute('fill', fieldColour(r));
    p.setAttribute('fill-opacity', on ? 0.5 : 0.08);
    p.setAttribute('stroke', sel ? '#00f' : '#222');
    p.setAttribute('stroke-opacity', on ? 1 : 0.2);
    p.setAttribute('stroke-width', sel ? 3 : 1);
  }
  function restyle() {
    fields._fields.forEach(style);
    drawLegend();
  }

  // ------------------------------------------------------------------ table
  var table = document.getElementById('fields'), sortCol = null, asc = true;
  var head = table.tHead.rows[0];
  T.columns.forEach(function (c, i) {
    var th = document.createElement('th');
    th.textContent = c;
    th.dataset.col = i;
    th.addEventListener('click', function () {
      asc = sortCol === i ? !asc : true;
      sortCol = i;
      drawTable();
    });
    head.appendChild(th);
  });
  function compare(a, b) {  // numbers numerically, text alphabetically, empty cells last
    var x = a[sortCol], y = b[sortCol];
    var ex = x === null || x === '', ey = y === null || y === '';
    if (ex || ey) return ex === ey ? 0 : (ex ? 1 : -1);
    var r = (typeof x === 'number' && typeof y === 'number') ? x - y : String(x).localeCompare(String(y));
    return asc ? r : -r;
  }
  function drawTable() {
    var rows = T.data.filter(shown);
    if (sortCol !== null) rows.sort(compare);
    var html = [];
    rows.slice(0, MAX_ROWS).forEach(function (r) {
      var id = String(r[col.field_id]);
      html.push('<tr data-id="' + esc(id) + '"' + (id === selected ? ' class="sel"' : '') + '>' +
        r.map(function (v, i) { return '<td>' + esc(fmt(v, T.kinds[i])) + '</td>'; }).join('') + '</tr>');
    });
    table.tBodies[0].innerHTML = html.join('');
    document.getElementById('table-note').textContent = rows.length > MAX_ROWS
      ? 'showing ' + MAX_ROWS + ' of ' + rows.length + ' fields: sort or filter to see the others'
      : (rows.length < T.data.length ? rows.length + ' of ' + T.data.length + ' fields match the filter' : '');
  }
  table.tBodies[0].addEventListener('click', function (e) {
    var tr = e.target.closest('tr');
    if (!tr || !(tr.dataset.id in shapeById)) return;
    select(tr.dataset.id);
    zoomTo(tr.dataset.id);
    document.getElementById('map').scrollIntoView({block: 'nearest'});
  });

  // ------------------------------------------------------------------ cards
  function timeSeries(id) {
    var S = D.series;
    if (!S) return '';
    var ci = S.columns.indexOf(S.column), di = S.columns.indexOf('date'), si = S.columns.indexOf('cloud_suspect');
    var own = S.data.filter(function (r) { return String(r[0]) === id; });
    var vals = own.map(function (r) { return r[ci]; }).filter(function (v) { return v !== null; });
    if (own.length < 2 || !vals.length) return '';
    var w = 320, h = 150, pl = 40, pb = 34, pt = 18, lo = Math.min.apply(null, vals), hi = Math.max.apply(null, vals);
    if (hi - lo < 0.05) { lo -= 0.025; hi += 0.025; }
    function X(i) { return pl + i * (w - pl - 10) / (own.length - 1); }
    function Y(v) { return pt + (hi - v) * (h - pt - pb) / (hi - lo); }
    var path = '', pts = '', ticks = '';
    own.forEach(function (r, i) {
      var v = r[ci];
      ticks += '<text x="' + X(i) + '" y="' + (h - pb + 14) + '" font-size="9" text-anchor="middle">' + esc(String(r[di]).slice(5)) + '</text>';
      if (v === null) return;
      path += (path ? 'L' : 'M') + X(i).toFixed(1) + ',' + Y(v).toFixed(1);
      var suspect = si >= 0 && r[si];
      pts += '<circle cx="' + X(i).toFixed(1) + '" cy="' + Y(v).toFixed(1) + '" r="3" fill="' + (suspect ? '#fff' : '#2b83ba') +
        '" stroke="' + (suspect ? '#d7191c' : '#2b83ba') + '"><title>' + esc(r[di]) + ': ' + v.toFixed(3) + (suspect ? ' (cloud suspect)' : '') + '</title></circle>';
    });
    return '<svg class="series" width="' + w + '" height="' + h + '" role="img"><title>' + esc(S.column) + ' over the dates</title>' +
      '<text x="' + pl + '" y="11" font-size="10">' + esc(S.column) + '</text>' +
      '<text x="' + (pl - 4) + '" y="' + (Y(hi) + 3) + '" font-size="9" text-anchor="end">' + hi.toFixed(2) + '</text>' +
      '<text x="' + (pl - 4) + '" y="' + (Y(lo) + 3) + '" font-size="9" text-anchor="end">' + lo.toFixed(2) + '</text>' +
      '<line x1="' + pl + '" x2="' + pl + '" y1="' + pt + '" y2="' + (h - pb) + '" stroke="#999"/>' +
      '<path d="' + path + '" fill="none" stroke="#2b83ba" stroke-width="1.5"/>' + pts + ticks + '</svg>';
  }
  function cardHtml(id) {
    var r = rowById[id], status = val(r, 'status'), pre = idx ? idx.replace(/_mean$/, '') : null;
    var facts = [['area', num(val(r, 'area_ha'), 2) + ' ha'], ['valid data', num(100 * val(r, 'valid_fraction'), 0) + ' %']];
    if (pre) {
      facts.push([pre.toUpperCase() + ' mean', num(val(r, idx), 3)]);
      facts.push([pre.toUpperCase() + ' p10–p90', num(val(r, pre + '_p10'), 3) + ' – ' + num(val(r, pre + '_p90'), 3)]);
    }
    facts.push(['problem area', val(r, 'problem_area_ha') === null ? '–' : num(val(r, 'problem_area_ha'), 2) + ' ha']);
    facts.push(['largest anomaly patch', num(val(r, 'anomaly_patch_ha'), 2) + ' ha']);
    if ('crop' in col) facts.push(['crop', fmt(val(r, 'crop'))]);
    if (val(r, 'peer_z') !== null) facts.push(['vs. peers (z)', (val(r, 'peer_z') >= 0 ? '+' : '') + num(val(r, 'peer_z'), 1) +
      ' among ' + val(r, 'peer_group') + ' (' + val(r, 'peer_n') + ')']);
    if (val(r, 'status_reason')) facts.push(['why', val(r, 'status_reason')]);
    var flags = ['hotspot', 'low_valid_data', 'partly_outside', 'declining'].filter(function (f) { return val(r, f) === true; });
    var areas = D.classes.filter(function (k) { return val(r, k.slug + '_pct') !== null; }).map(function (k) {
      return '<tr><td>' + esc(k.label) + '</td><td>' + num(val(r, k.slug + '_ha'), 2) + '</td><td>' + num(val(r, k.slug + '_pct'), 1) + '</td></tr>';
    }).join('');
    return '<div class="card" id="field-' + esc(id) + '"><h3>Field ' + esc(id) + ' <span class="status ' +
      esc(String(status).replace(/ /g, '')) + '">' + esc(status) + '</span></h3><div>' +
      flags.map(function (f) { return '<span class="flag">' + esc(f) + '</span>'; }).join('') + '</div><div class="facts">' +
      facts.map(function (f) { return '<div><b>' + esc(f[0]) + '</b>: ' + esc(f[1]) + '</div>'; }).join('') +
      '</div>' + (areas ? '<table style="width:auto;margin:6px 0"><tr><th>class</th><th>ha</th><th>%</th></tr>' + areas + '</table>' : '') +
      timeSeries(id) + '</div>';
  }
  function card(id) {  // the server-rendered card, else one rendered here
    var el = document.getElementById('field-' + id);
    if (el) return el;
    var section = document.getElementById('card-on-demand');
    section.querySelector('.cards').innerHTML = cardHtml(id);
    section.hidden = false;
    return document.getElementById('field-' + id);
  }

  // ------------------------------------------------------------------ selection
  function select(id) {  // highlight the field on the map, in the table and its card
    var before = shapeById[selected];
    selected = id;
    if (before) style(before);
    if (id in shapeById) style(shapeById[id]);
    var el = card(id);
    document.querySelectorAll('.card.sel, #fields tr.sel').forEach(function (e) { e.classList.remove('sel'); });
    el.classList.add('sel');
    var tr = table.querySelector('tr[data-id="' + CSS.escape(id) + '"]');
    if (tr) tr.classList.add('sel');
    return el;
  }
  function zoomTo(id) {
    map.fitBounds(shapeById[id].bounds, {maxZoom: M.max_zoom, padding: [40, 40]});
  }
  function fromHash() {  // a link to a field (#field-<id>): its card, and the map on it
    var m = /^#field-(.+)$/.exec(decodeURIComponent(location.hash));
    if (!m || !(m[1] in rowById) || m[1] === selected) return;
    select(m[1]).scrollIntoView();
    if (m[1] in shapeById) zoomTo(m[1]);
  }
  window.addEventListener('hashchange', fromHash);

  drawTable();
  restyle();
  fromHash();
})();
