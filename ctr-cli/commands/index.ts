// Every verb group of the berth CLI; each file registers its commands when imported.
import './version.ts';
import './namespaces.ts';
import './images.ts';
import './content.ts';
import './snapshots.ts';
import './containers.ts';
import './leases.ts';
import './events.ts';
import './run.ts';
import './tasks.ts';
import './doctor.ts';
import './completion.ts';
import './policy.ts';
