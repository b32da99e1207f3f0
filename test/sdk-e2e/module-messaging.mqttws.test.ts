import { moduleMessagingScenarios } from './scenarios/modules.ts';

moduleMessagingScenarios('MqttWs');
