// The console serves uPlot's ES module as ./vendor/uplot.js (console/assets.ts); its types are the package's.
import uPlot from 'uplot';
export default uPlot;
